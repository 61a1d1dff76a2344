//! HTTP listeners that slow or idle clients cannot exhaust.
//!
//! Both of the daemon's HTTP listeners (the REST API and the gateway) run
//! their connections through [`serve`] and [`serve_http`]:
//!
//! - at most [`ConnLimits::max_connections`] connections at once; a
//!   connection beyond the cap is accepted and closed at once (refused),
//! - HTTP/1 request headers must arrive within
//!   [`ConnLimits::header_read_timeout`] (hyper's timer, also between
//!   keep-alive requests), and a connection that has sent no complete
//!   request within it (an HTTP/2 preface never finished, nothing sent) is
//!   closed too,
//! - a connection with no request in flight for
//!   [`ConnLimits::idle_timeout`] is closed,
//! - HTTP/2 connections are pinged every
//!   [`ConnLimits::keepalive_interval`] and closed when a ping is not
//!   answered within [`ConnLimits::keepalive_timeout`].
//!
//! [`raise_nofile`] lifts the process's descriptor limit to fit the caps.

mod activity;
mod conn;
mod limits;
mod listener;
mod nofile;

pub use conn::serve_http;
pub use limits::ConnLimits;
pub use listener::{Accept, Conn, serve};
pub use nofile::raise_nofile;
pub use tokio_util::sync::CancellationToken;

#[cfg(feature = "testing")]
pub mod testing;
