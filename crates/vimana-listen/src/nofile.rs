//! Raising `RLIMIT_NOFILE` so the connection caps fit.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft descriptor limit to at least `needed` (and at least to
/// the hard limit, which costs nothing); raises the hard limit too when
/// the process may (root). Returns the soft limit now in force.
pub fn raise_nofile(needed: u64) -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let want_hard = hard.max(needed);
    if want_hard > hard && setrlimit(Resource::RLIMIT_NOFILE, want_hard, want_hard).is_ok() {
        return want_hard;
    }
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_at_least_the_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let now = raise_nofile(64);
        assert!(now >= hard.min(64), "{now}");
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, now);
    }
}
