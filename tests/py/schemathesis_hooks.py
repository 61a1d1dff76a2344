"""Schemathesis hooks for crates/vimana/tests/schemathesis.rs.

`follow=true` on the log and event streams is documented to stream until
the client disconnects: such a request never "answers", so it is sent as
`follow=false` (the streams themselves are covered by the daemon's own
tests). Every phase calls `before_call`, the coverage phase included.
"""

import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    query = case.query
    if isinstance(query, dict) and query.get("follow") in (True, "true"):
        query["follow"] = "false"
