//! `vimana delete -f FILE…` and `vimana delete KIND NAME`: all or nothing;
//! the daemon refuses (409) while remaining resources still refer to one.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use http::Method;
use vimana_api::{ChangeList, DeleteRequest, ResourceId};

use super::apply::{print_changes, read_resources};
use super::get::{kind, segment};
use crate::cli::OutputFormat;
use crate::client::Client;

pub async fn run(
    client: &Client,
    out: OutputFormat,
    files: &[String],
    kind_arg: Option<&str>,
    name: Option<&str>,
) -> Result<ExitCode> {
    let list: Option<ChangeList> = match (files.is_empty(), kind_arg, name) {
        (false, None, None) => {
            let resources = read_resources(files)?
                .into_iter()
                .map(|(r, _)| ResourceId {
                    kind: r.kind().as_str().to_owned(),
                    name: r.name().to_owned(),
                })
                .collect();
            client
                .call(
                    Method::POST,
                    "/v1/resources/delete",
                    Some(&DeleteRequest { resources }),
                )
                .await?
        }
        (true, Some(k), Some(n)) => {
            let k = kind(k)?;
            let path = format!("/v1/resources/{}/{}", k.plural(), segment(n));
            client.call(Method::DELETE, &path, None::<&()>).await?
        }
        _ => bail!("give either -f FILE or KIND NAME, e.g. `vimana delete domain example`"),
    };
    let list = list.ok_or_else(|| anyhow!("the daemon answered the delete without a body"))?;
    print_changes(out, &list)?;
    Ok(ExitCode::SUCCESS)
}
