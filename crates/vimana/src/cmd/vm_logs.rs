//! `vimana vm logs ID [-f] [--tail N]`: the VM's serial console output,
//! as persisted in `<vm_dir>/console.log` (raw bytes, as the guest wrote
//! them). `-f` polls the file every 200 ms and ends when the VM is no
//! longer starting, running or stopping (after printing what is left), or
//! on Ctrl-C.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::client::Client;
use crate::home::Home;

const POLL: Duration = Duration::from_millis(200);
/// How often `-f` asks the daemon whether the VM still runs.
const STATE_EVERY: Duration = Duration::from_secs(1);
/// Block size when searching backwards for the last lines.
const TAIL_BLOCK: u64 = 64 * 1024;

pub async fn logs(
    home: &Home,
    client: &Client,
    id: &str,
    follow: bool,
    tail: Option<usize>,
) -> Result<ExitCode> {
    let w = super::vm::get_vm(client, id).await?;
    let path = home.vm_dir(w.name.as_str()).join("console.log");
    let mut stdout = std::io::stdout();
    let mut pos = match File::open(&path) {
        Ok(mut f) => {
            let start = match tail {
                Some(n) => tail_offset(&mut f, n)?,
                None => 0,
            };
            copy_from(&mut f, start, &mut stdout)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut live = super::vm::is_live(&w);
    let mut checked = Instant::now();
    loop {
        // The state is read before the file, so the last output of a VM
        // that stopped is printed before returning.
        pos = follow_once(&path, pos, &mut stdout)?;
        if !live {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(POLL).await;
        if checked.elapsed() >= STATE_EVERY {
            checked = Instant::now();
            live = super::vm::is_live(&super::vm::get_vm(client, id).await?);
        }
    }
}

/// Prints what was added to `path` since `pos`; starts over when the file
/// was truncated or replaced by a shorter one.
fn follow_once(path: &Path, pos: u64, out: &mut impl Write) -> Result<u64> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pos),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let len = f.metadata()?.len();
    let from = if len < pos { 0 } else { pos };
    copy_from(&mut f, from, out)
}

/// Copies `f` from `start` to its end into `out`; returns the new position.
fn copy_from(f: &mut File, start: u64, out: &mut impl Write) -> Result<u64> {
    f.seek(SeekFrom::Start(start))?;
    let n = std::io::copy(f, out)?;
    out.flush()?;
    Ok(start + n)
}

/// The offset where the last `n` lines of `f` begin (a last line without a
/// newline counts as a line).
fn tail_offset<R: Read + Seek>(f: &mut R, n: usize) -> Result<u64> {
    let len = f.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut newlines = 0usize;
    let mut skip_final = true;
    let mut buf = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(TAIL_BLOCK);
        buf.resize((end - start) as usize, 0);
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf)?;
        for (i, b) in buf.iter().enumerate().rev() {
            let at = start + i as u64;
            if *b != b'\n' {
                skip_final = false;
                continue;
            }
            // A newline that ends the file ends the last line, not one before it.
            if skip_final && at + 1 == len {
                skip_final = false;
                continue;
            }
            newlines += 1;
            if newlines == n {
                return Ok(at + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn tail(text: &str, n: usize) -> String {
        let mut c = Cursor::new(text.as_bytes().to_vec());
        let at = tail_offset(&mut c, n).expect("tail") as usize;
        text[at..].to_string()
    }

    #[test]
    fn tail_counts_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a\nb\nc\n", 5), "a\nb\nc\n");
        assert_eq!(tail("a\nb\nc\n", 0), "");
        assert_eq!(tail("", 3), "");
        assert_eq!(tail("\n\n", 1), "\n");
    }

    #[test]
    fn tail_spans_blocks() {
        let line = "x".repeat(1000);
        let text: String = (0..200).map(|i| format!("{i} {line}\n")).collect();
        let got = tail(&text, 3);
        assert!(got.starts_with("197 "), "{}", &got[..10]);
        assert_eq!(got.lines().count(), 3);
    }

    #[test]
    fn follow_restarts_after_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("console.log");
        std::fs::write(&p, "hello\n").expect("write");
        let mut out = Vec::new();
        let pos = follow_once(&p, 0, &mut out).expect("follow");
        assert_eq!(pos, 6);
        std::fs::write(&p, "hi\n").expect("write");
        let pos = follow_once(&p, pos, &mut out).expect("follow");
        assert_eq!(pos, 3);
        assert_eq!(out, b"hello\nhi\n");
    }
}
