//! The limits of one listener.

use std::time::Duration;

/// How long clients may take and how many may be connected at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// The time a client has to send a request's headers (HTTP/1, also
    /// between keep-alive requests), or its first request at all.
    pub header_read_timeout: Duration,
    /// A connection without a request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2 pings are sent this often while a connection is open.
    pub keepalive_interval: Duration,
    /// An HTTP/2 ping not answered within this closes the connection.
    pub keepalive_timeout: Duration,
    /// How long a shutdown (the listener's or an idle connection's) waits
    /// for requests in flight before the connections are dropped.
    pub drain_timeout: Duration,
}

/// The default connection cap.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnLimits {
    /// Checks the limits; the error names the field, the rule and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("keepalive_timeout", self.keepalive_timeout),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(format!(
                    "{name}_ms must be greater than 0; set it to a number of milliseconds such as 10000"
                ));
            }
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1; the default is 4096".to_string());
        }
        Ok(())
    }
}
