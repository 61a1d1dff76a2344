//! `vimana-bench download`: throughput of `vimana_registry::download`
//! against curl, over loopback, from the same static HTTP server.
//!
//! A file of random bytes is written to a temporary directory and served on
//! 127.0.0.1, either by `python3 -m http.server` or by a minimal built-in
//! server (one thread per connection, the body sent with `std::io::copy`,
//! which uses `sendfile` on Linux). Then, alternating, `runs` times each:
//! `curl -s -o FILE -w '%{speed_download}' URL` (to a file beside vimana's cache), and
//! `vimana_registry::download(URL, Some(sha256), <fresh cache dir>, …)`,
//! which streams to the cache, hashes, verifies, fsyncs and renames.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde::Serialize;

const FILE_NAME: &str = "blob.bin";
const SERVER_TIMEOUT: Duration = Duration::from_secs(20);

/// The static HTTP server both clients download from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    /// `python3 -m http.server` (single-threaded, read/write copy loop).
    Python,
    /// The built-in server (sendfile).
    Builtin,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    server: Server,
    size_mib: u64,
    runs: u32,
    /// MB/s (10^6 bytes per second), in run order.
    curl_mb_s: Vec<f64>,
    vimana_mb_s: Vec<f64>,
    curl_median_mb_s: f64,
    vimana_median_mb_s: f64,
    /// vimana median / curl median.
    ratio: f64,
    /// vimana's rate up to the last byte written and hashed (before
    /// `sync_all` and the rename into the cache), median.
    vimana_transfer_median_mb_s: f64,
}

/// sha256 (lowercase hex) of a file, with `sha256sum`.
pub fn sha256_file(path: &Path) -> Result<String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("cannot run sha256sum")?;
    if !out.status.success() {
        bail!("sha256sum {} failed ({})", path.display(), out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .context("sha256sum printed nothing")
}

/// `size_mib` MiB of pseudo-random (incompressible) bytes.
fn write_random(path: &Path, size_mib: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..size_mib {
        for chunk in buf.chunks_exact_mut(8) {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        f.write_all(&buf)?;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// A running server; stopped on drop.
enum Running {
    Python(Child),
    Builtin,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::Python(child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_server(server: Server, dir: &Path) -> Result<(Running, u16)> {
    match server {
        Server::Python => {
            let port = free_port()?;
            let child = Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1"])
                .arg(port.to_string())
                .arg("--directory")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot run python3 -m http.server")?;
            let running = Running::Python(child);
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let deadline = Instant::now() + SERVER_TIMEOUT;
            while TcpStream::connect(addr).is_err() {
                if Instant::now() > deadline {
                    bail!("python3 -m http.server did not listen on {addr}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok((running, port))
        }
        Server::Builtin => {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            let port = l.local_addr()?.port();
            let dir = dir.to_path_buf();
            // Lives until the process exits; the bench exits right after.
            std::thread::spawn(move || {
                for conn in l.incoming().flatten() {
                    let dir = dir.clone();
                    std::thread::spawn(move || {
                        if let Err(e) = serve_one(conn, &dir) {
                            eprintln!("vimana-bench: builtin server: {e:#}");
                        }
                    });
                }
            });
            Ok((Running::Builtin, port))
        }
    }
}

/// Answers one `GET /<file>` on `conn` (HTTP/1.1, `Connection: close`).
fn serve_one(conn: TcpStream, dir: &Path) -> Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut out = conn;
    let name = path.trim_start_matches('/');
    let file = (!name.is_empty() && !name.contains('/') && !name.contains(".."))
        .then(|| std::fs::File::open(dir.join(name)).ok())
        .flatten();
    let Some(mut file) = file else {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    };
    let len = file.metadata()?.len();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )?;
    std::io::copy(&mut file, &mut out)?;
    out.flush()?;
    Ok(())
}

/// `curl -s -o FILE -w '%{speed_download}'` (a real download to disk, on
/// the same filesystem as vimana's cache), in MB/s.
fn curl(url: &str, to: &Path) -> Result<f64> {
    let out = Command::new("curl")
        .args(["-s", "-f", "-w", "%{speed_download}", url, "-o"])
        .arg(to)
        .output()
        .context("cannot run curl (apt-get install curl)")?;
    if !out.status.success() {
        bail!("curl {url} failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes_s: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("curl printed {text:?}, not a speed"))?;
    Ok(bytes_s / 1e6)
}

/// One `vimana_registry::download` into a fresh cache; (MB/s overall,
/// MB/s until the last byte was written).
async fn vimana(url: &str, sha: &str, cache: &Path, size: u64) -> Result<(f64, f64)> {
    let last = Mutex::new(None::<Instant>);
    let progress = |done: u64, total: Option<u64>| {
        if total == Some(done)
            && let Ok(mut l) = last.lock()
        {
            *l = Some(Instant::now());
        }
    };
    let t0 = Instant::now();
    let got = vimana_registry::download(url, Some(sha), cache, &progress)
        .await
        .context("vimana_registry::download")?;
    let elapsed = t0.elapsed();
    if !got.verified || got.cached || got.sha256 != sha {
        bail!("unexpected download result {got:?}");
    }
    let transfer = last
        .lock()
        .ok()
        .and_then(|l| *l)
        .map_or(elapsed, |t| t - t0);
    let mb = size as f64 / 1e6;
    Ok((
        mb / elapsed.as_secs_f64(),
        mb / transfer.as_secs_f64().max(1e-9),
    ))
}

fn median(v: &[f64]) -> f64 {
    crate::stats::summarize(v).map_or(0.0, |s| s.median_ms)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub async fn run(size_mib: u64, runs: u32, server: Server) -> Result<String> {
    let tmp = tempfile::Builder::new()
        .prefix("vimana-bench-dl-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let serve_dir = tmp.path().join("serve");
    std::fs::create_dir_all(&serve_dir)?;
    let file = serve_dir.join(FILE_NAME);
    write_random(&file, size_mib)?;
    let sha = sha256_file(&file)?;
    let size = std::fs::metadata(&file)?.len();
    let (_server, port) = start_server(server, &serve_dir)?;
    let url = format!("http://127.0.0.1:{port}/{FILE_NAME}");

    let mut curl_mb_s = Vec::new();
    let mut vimana_mb_s = Vec::new();
    let mut transfer_mb_s = Vec::new();
    for i in 0..runs {
        let curl_out = tmp.path().join(format!("curl-{i}.bin"));
        curl_mb_s.push(curl(&url, &curl_out).with_context(|| format!("curl, run {i}"))?);
        std::fs::remove_file(&curl_out)?;
        let cache: PathBuf = tmp.path().join(format!("cache-{i}"));
        let (all, transfer) = vimana(&url, &sha, &cache, size)
            .await
            .with_context(|| format!("vimana, run {i}"))?;
        vimana_mb_s.push(all);
        transfer_mb_s.push(transfer);
        std::fs::remove_dir_all(&cache)?;
    }
    let c = median(&curl_mb_s);
    let v = median(&vimana_mb_s);
    let report = Report {
        bench: "download",
        server,
        size_mib,
        runs,
        curl_mb_s: curl_mb_s.iter().copied().map(round1).collect(),
        vimana_mb_s: vimana_mb_s.iter().copied().map(round1).collect(),
        curl_median_mb_s: round1(c),
        vimana_median_mb_s: round1(v),
        ratio: crate::stats::round3(if c > 0.0 { v / c } else { 0.0 }),
        vimana_transfer_median_mb_s: round1(median(&transfer_mb_s)),
    };
    drop(tmp);
    Ok(serde_json::to_string(&report)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn builtin_server_serves_the_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(FILE_NAME), b"hello")?;
        let (_s, port) = start_server(Server::Builtin, dir.path())?;
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        c.write_all(format!("GET /{FILE_NAME} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())?;
        let mut answer = String::new();
        c.read_to_string(&mut answer)?;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
        Ok(())
    }
}
