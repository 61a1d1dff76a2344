//! The shell on the serial console, for `vm attach`.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::reaper::Reaper;
use crate::{DEFAULT_PATH, log};

/// A shell that lived less than this is respawned only after a pause.
const MIN_LIFETIME: Duration = Duration::from_secs(2);

/// Keeps `shell` running on `/dev/<device>` in a thread, forever.
pub fn keep_shell(reaper: Arc<Reaper>, shell: PathBuf, device: String) {
    let spawned = std::thread::Builder::new()
        .name("console-shell".into())
        .spawn(move || {
            let tty = Path::new("/dev").join(&device);
            let mut reported = false;
            loop {
                let started = Instant::now();
                match spawn(&reaper, &shell, &tty) {
                    Ok(exit) => {
                        reported = false;
                        let _ = exit.recv();
                    }
                    Err(e) => {
                        if !reported {
                            log(&format!(
                                "cannot start console shell {} on {}: {e}",
                                shell.display(),
                                tty.display()
                            ));
                            reported = true;
                        }
                    }
                }
                if started.elapsed() < MIN_LIFETIME {
                    std::thread::sleep(MIN_LIFETIME);
                }
            }
        });
    if let Err(e) = spawned {
        log(&format!("cannot start console shell thread: {e}"));
    }
}

fn spawn(
    reaper: &Reaper,
    shell: &Path,
    tty: &Path,
) -> std::io::Result<std::sync::mpsc::Receiver<crate::reaper::Exit>> {
    let term = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(tty)?;
    let home = if Path::new("/root").is_dir() {
        "/root"
    } else {
        "/"
    };
    let mut cmd = Command::new(shell);
    cmd.stdin(Stdio::from(term.try_clone()?))
        .stdout(Stdio::from(term.try_clone()?))
        .stderr(Stdio::from(term))
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .env("HOME", "/root")
        .env("TERM", "linux")
        .env("PS1", "vm:\\w# ")
        .current_dir(home);
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Make the tty (now fd 0) the controlling terminal, stealing it
            // from a dead shell's session if needed.
            if libc::ioctl(0, libc::TIOCSCTTY, 1) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (_child, exit) = reaper.spawn(&mut cmd)?;
    Ok(exit)
}
