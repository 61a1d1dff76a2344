//! `vimana-bench wasm-deploy`: one small gRPC service (the adder) deployed
//! as many Components through one `vimana apply`, and the daemon's memory
//! and restart time with them.
//!
//! The layout is what a user running many small tenants would write:
//! `--domains` Domains (`d<i>.adder.bench`), each with one `adder` Server
//! serving `foo.bar.AdderService` and `--versions` Component versions
//! (`1.0.0`, `1.0.1`, …) weighted equally. One contract cannot be served
//! by 1000 Servers of one Domain (a service belongs to one Server per
//! Domain), hence Domains × versions.
//!
//! With `--images distinct` (default) every Component gets its own image
//! file: the given component plus a custom section holding its index, so
//! every digest differs and every Component is compiled (as separate builds
//! of a service would be). With `--images shared` all Components use one
//! file, which the daemon loads and compiles once.
//!
//! Measured in a temporary VIMANA_HOME (gateway on free ports):
//! idle RSS; wall time from the start of `vimana apply` until every
//! Component reports `Available=True`; RSS after; one AddFloats call on the
//! first and the last Domain; then the daemon is stopped (SIGTERM) and
//! started again on the same home: time until a call answers and until all
//! Components are available again (compile cache hits).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::daemon_rss::{Run, mib, proc_status_field};
use crate::grpc_conn::Target;

const IDLE_SETTLE: Duration = Duration::from_secs(2);
const LOADED_SETTLE: Duration = Duration::from_secs(3);
const AVAILABLE_TIMEOUT: Duration = Duration::from_secs(900);

/// How the Components' images relate.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Images {
    /// One image file (one digest) per Component.
    Distinct,
    /// One image file for all Components.
    Shared,
}

/// Command-line options of `wasm-deploy`.
#[derive(clap::Args, Debug)]
pub struct Opts {
    /// The vimana executable.
    #[arg(long, value_name = "PATH")]
    pub vimana: PathBuf,
    /// The adder component with its contract embedded
    /// (`vimana image embed … --proto examples/adder/adder.proto`).
    #[arg(long, value_name = "WASM")]
    pub image: PathBuf,
    /// Domains, each with one `adder` Server.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub domains: u32,
    /// Component versions per Server.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub versions: u32,
    /// One image per Component, or one for all.
    #[arg(long, value_enum, default_value_t = Images::Distinct)]
    pub images: Images,
}

#[derive(Serialize)]
struct Report {
    components: u32,
    domains: u32,
    versions: u32,
    images: Images,
    image_bytes: u64,
    idle_rss_mib: f64,
    /// Wall time of the `vimana apply` process.
    apply_s: f64,
    /// From the start of `vimana apply` until every Component is Available.
    all_available_s: f64,
    rss_with_n_mib: f64,
    per_component_kib: f64,
    peak_rss_mib: f64,
    threads_with_n: u64,
    /// Sizes of the compile cache (`VIMANA_HOME/compiled`).
    compile_cache_mib: f64,
    /// One AddFloats call (connect + call) on the first and the last Domain.
    first_call_ms: f64,
    last_call_ms: f64,
    /// Second daemon start on the same home: from spawn until an
    /// AddFloats call on the last Domain answers.
    restart_first_answer_s: f64,
    /// … and until every Component is Available again.
    restart_all_available_s: f64,
    restart_rss_mib: f64,
}

fn domain_id(i: u32) -> String {
    format!("{:032x}", 0xb0_0000_u64 + u64::from(i))
}

fn alias(i: u32) -> String {
    format!("d{i}.adder.bench")
}

fn version(v: u32) -> String {
    format!("1.0.{v}")
}

/// `wasm` with a custom section `vimana-bench/nonce` holding `nonce`, so
/// its digest differs from every other nonce's.
fn with_nonce(wasm: &[u8], nonce: u32) -> Vec<u8> {
    let name = b"vimana-bench/nonce";
    let payload = nonce.to_le_bytes();
    let mut body = Vec::new();
    leb128(&mut body, name.len() as u64);
    body.extend_from_slice(name);
    body.extend_from_slice(&payload);
    let mut out = wasm.to_vec();
    out.push(0);
    leb128(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Writes the images and the resource file; returns the file.
fn write_resources(dir: &Path, opts: &Opts, wasm: &[u8]) -> Result<PathBuf> {
    use std::fmt::Write as _;
    let img_dir = dir.join("images");
    std::fs::create_dir_all(&img_dir)?;
    let shared = img_dir.join("adder.wasm");
    if opts.images == Images::Shared {
        std::fs::write(&shared, wasm)?;
    }
    let mut y = String::from(
        "apiVersion: api.vimana.host/v1alpha1\nkind: Vimana\nmetadata:\n  name: local\nspec:\n  regions: [local]\n",
    );
    for d in 0..opts.domains {
        let id = domain_id(d);
        write!(
            y,
            "---\napiVersion: api.vimana.host/v1alpha1\nkind: Domain\nmetadata:\n  name: d{d}\nspec:\n  id: {id}\n  vimana: local\n  aliases: [{}]\n",
            alias(d)
        )?;
        write!(
            y,
            "---\napiVersion: api.vimana.host/v1alpha1\nkind: Server\nmetadata:\n  name: adder-d{d}\nspec:\n  id: adder\n  domain: {id}\n  services: [foo.bar.AdderService]\n  versionWeights:\n"
        )?;
        for v in 0..opts.versions {
            writeln!(y, "    \"{}\": 1", version(v))?;
        }
        for v in 0..opts.versions {
            let image = match opts.images {
                Images::Shared => shared.clone(),
                Images::Distinct => {
                    let p = img_dir.join(format!("adder-{d}-{v}.wasm"));
                    std::fs::write(&p, with_nonce(wasm, d * opts.versions + v))?;
                    p
                }
            };
            write!(
                y,
                "---\napiVersion: api.vimana.host/v1alpha1\nkind: Component\nmetadata:\n  name: adder-d{d}-{}\nspec:\n  version: {}\n  server: adder\n  domain: {id}\n  image: {}\n",
                version(v),
                version(v),
                image.display()
            )?;
        }
    }
    let file = dir.join("resources.yaml");
    std::fs::write(&file, y)?;
    Ok(file)
}

/// Counts the Components with `Available=True`; errors on none listed.
async fn available_components(run: &Run) -> Result<(usize, usize)> {
    let out = run.cli().arg("get").arg("components").output().await?;
    if !out.status.success() {
        bail!(
            "vimana get components failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .context("vimana get components printed no JSON array")?;
    let ok = list
        .iter()
        .filter(|c| {
            c["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|k| k["type"] == "Available" && k["status"] == "True")
            })
        })
        .count();
    Ok((ok, list.len()))
}

async fn wait_available(run: &mut Run, n: usize) -> Result<()> {
    let deadline = Instant::now() + AVAILABLE_TIMEOUT;
    loop {
        if let Some(status) = run.daemon_exited() {
            bail!("the daemon exited ({status}):\n{}", run.daemon_output());
        }
        if let Ok((ok, _)) = available_components(run).await
            && ok >= n
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            let (ok, total) = available_components(run).await.unwrap_or((0, 0));
            bail!("only {ok} of {total} Components Available after {AVAILABLE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The gateway's h2c address from VIMANA_HOME/gateway.json.
fn h2c_addr(home: &Path) -> Option<String> {
    let text = std::fs::read_to_string(home.join("gateway.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["h2c"].as_str().map(str::to_owned)
}

/// Connects and makes one AddFloats call on Domain `d`; returns ms.
async fn call(home: &Path, d: u32) -> Result<f64> {
    let addr = h2c_addr(home).context("no h2c address in gateway.json")?;
    let t0 = Instant::now();
    let target = Target::new(&format!("http://{addr}"), Some(&alias(d)), None).await?;
    let mut send = target.connect().await?;
    target.call(&mut send).await?;
    Ok(t0.elapsed().as_secs_f64() * 1000.0)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn secs(d: Duration) -> f64 {
    crate::stats::round3(d.as_secs_f64())
}

async fn measure(run: &mut Run, opts: &Opts, wasm: &[u8]) -> Result<Report> {
    let n = opts.domains * opts.versions;
    std::fs::write(
        run.home.join("config.toml"),
        "[daemon]\npoll_interval_ms = 2000\n\n[gateway]\ntls_listen = \"127.0.0.1:0\"\nh2c_listen = \"127.0.0.1:0\"\n",
    )?;
    let file = write_resources(run.root(), opts, wasm)?;
    let pid = run.start_daemon()?;
    run.wait_for_socket().await?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle = proc_status_field(pid, "VmRSS")?;

    let t0 = Instant::now();
    let out = run.cli().arg("apply").arg("-f").arg(&file).output().await?;
    let apply = t0.elapsed();
    if !out.status.success() {
        bail!(
            "vimana apply failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    wait_available(run, n as usize).await?;
    let all_available = t0.elapsed();
    eprintln!(
        "vimana-bench: {n} Components available {:.3} s after apply start",
        all_available.as_secs_f64()
    );
    let first_call_ms = call(&run.home, 0)
        .await
        .context("AddFloats on the first Domain")?;
    let last_call_ms = call(&run.home, opts.domains - 1)
        .await
        .context("AddFloats on the last Domain")?;
    tokio::time::sleep(LOADED_SETTLE).await;
    let loaded = proc_status_field(pid, "VmRSS")?;
    let peak = proc_status_field(pid, "VmHWM")?;
    let threads_with_n = proc_status_field(pid, "Threads")?;
    let compile_cache = dir_size(&run.home.join("compiled"));

    run.stop_daemon()?;
    let t1 = Instant::now();
    let pid2 = run.start_daemon()?;
    let first_answer = loop {
        if let Some(status) = run.daemon_exited() {
            bail!(
                "the restarted daemon exited ({status}):\n{}",
                run.daemon_output()
            );
        }
        if call(&run.home, opts.domains - 1).await.is_ok() {
            break t1.elapsed();
        }
        if t1.elapsed() > AVAILABLE_TIMEOUT {
            bail!("no AddFloats answer {AVAILABLE_TIMEOUT:?} after the restart");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    wait_available(run, n as usize).await?;
    let restart_all = t1.elapsed();
    let restart_rss = proc_status_field(pid2, "VmRSS")?;

    Ok(Report {
        components: n,
        domains: opts.domains,
        versions: opts.versions,
        images: opts.images,
        image_bytes: wasm.len() as u64,
        idle_rss_mib: mib(idle),
        apply_s: secs(apply),
        all_available_s: secs(all_available),
        rss_with_n_mib: mib(loaded),
        per_component_kib: crate::stats::round3((loaded as f64 - idle as f64) / f64::from(n)),
        peak_rss_mib: mib(peak),
        threads_with_n,
        compile_cache_mib: crate::stats::round3(compile_cache as f64 / (1 << 20) as f64),
        first_call_ms: crate::stats::round3(first_call_ms),
        last_call_ms: crate::stats::round3(last_call_ms),
        restart_first_answer_s: secs(first_answer),
        restart_all_available_s: secs(restart_all),
        restart_rss_mib: mib(restart_rss),
    })
}

pub async fn run(opts: Opts) -> Result<String> {
    let vimana = std::path::absolute(&opts.vimana)?;
    if !vimana.is_file() {
        bail!("{} is not a file", vimana.display());
    }
    let wasm = std::fs::read(&opts.image)
        .with_context(|| format!("cannot read {}", opts.image.display()))?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut run = Run::new(vimana)?;
    let result = tokio::select! {
        r = measure(&mut run, &opts, &wasm) => r,
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
    };
    run.cleanup();
    Ok(serde_json::to_string(&result?)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonce_section_is_a_valid_custom_section() {
        let base = b"\0asm\x0d\x00\x01\x00".to_vec();
        let out = super::with_nonce(&base, 300);
        // id 0, size 23 = 1 (name length) + 18 (name) + 4 (nonce)
        assert_eq!(&out[8..11], &[0, 23, 18]);
        assert_eq!(&out[11..29], b"vimana-bench/nonce");
        assert_eq!(&out[29..], &300u32.to_le_bytes());
        assert_eq!(super::domain_id(1).len(), 32);
    }
}
