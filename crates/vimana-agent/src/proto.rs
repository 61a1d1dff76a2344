//! The wire protocol between the host and the guest agent.
//!
//! See the crate documentation for the conversation; this module holds the
//! message types and the framing (4-byte big-endian length + JSON body, at
//! most [`MAX_FRAME`] bytes).

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Version of the protocol spoken by this crate, reported in [`StatusReply`].
/// Bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest accepted frame body, in bytes (1 MiB).
pub const MAX_FRAME: usize = 1 << 20;

/// The first (and, except for exec input, only) frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Ask for a [`StatusReply`].
    Status,
    /// Run a command; see [`ExecRequest`].
    Exec(ExecRequest),
    /// Power off (or reboot) the guest after replying [`Reply::Ok`].
    Shutdown {
        /// Reboot (`RB_AUTOBOOT`) instead of power off (`RB_POWER_OFF`).
        reboot: bool,
    },
}

/// A command to run in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Program and arguments; `argv[0]` is looked up in `PATH`.
    pub argv: Vec<String>,
    /// Variables added to (or replacing those of) the agent's environment.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Working directory; the agent's (`/`) when absent.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Whether the client will send [`ExecInput`] frames; otherwise the
    /// child's stdin is `/dev/null`.
    #[serde(default)]
    pub stdin: bool,
}

impl ExecRequest {
    /// A request for `argv` with no extra environment, no cwd, no stdin.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: None,
            stdin: false,
        }
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the working directory.
    #[must_use]
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Whether stdin is streamed from the client.
    #[must_use]
    pub fn with_stdin(mut self, stdin: bool) -> Self {
        self.stdin = stdin;
        self
    }
}

/// Frames a client sends after [`Request::Exec`] was answered with
/// [`Reply::Started`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecInput {
    /// Bytes for the child's stdin.
    Stdin {
        /// The bytes (base64 on the wire).
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    /// Close the child's stdin.
    StdinEof,
}

/// Frames the agent sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to [`Request::Status`].
    Status(StatusReply),
    /// Answer to [`Request::Shutdown`].
    Ok,
    /// The command of a [`Request::Exec`] runs with this pid.
    Started {
        /// Pid of the child in the guest.
        pid: u32,
    },
    /// Output of the child on stdout.
    Stdout {
        /// The bytes (base64 on the wire).
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    /// Output of the child on stderr.
    Stderr {
        /// The bytes (base64 on the wire).
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    /// The child ended; the last frame of an exec.
    Exit {
        /// Exit code when it exited normally.
        code: Option<i32>,
        /// Signal number when it was killed by a signal.
        signal: Option<i32>,
    },
    /// The request failed (bad frame, command not found, ...). Last frame.
    Error {
        /// What went wrong, for humans.
        message: String,
    },
}

/// What the agent reports about itself and the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// `CARGO_PKG_VERSION` of the agent.
    pub agent_version: String,
    /// [`PROTOCOL_VERSION`] of the agent.
    pub protocol_version: u32,
    /// `uname -r` of the guest kernel.
    pub kernel_release: String,
    /// Hostname of the guest.
    pub hostname: String,
    /// Time since the guest booted (`CLOCK_BOOTTIME`), in milliseconds.
    pub uptime_ms: u64,
    /// Whether the agent runs as PID 1.
    pub pid1: bool,
}

/// Framing errors.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Reading or writing the socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The announced or encoded body is larger than [`MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the body.
        len: usize,
        /// [`MAX_FRAME`].
        max: usize,
    },
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The body is not the expected JSON message.
    #[error("invalid frame body: {0}")]
    Decode(#[source] serde_json::Error),
    /// The message could not be encoded.
    #[error("cannot encode frame: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Encodes `msg` as one frame (length prefix + JSON).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg).map_err(FrameError::Encode)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len: body.len(),
            max: MAX_FRAME,
        });
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
        len: body.len(),
        max: MAX_FRAME,
    })?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks a length prefix against [`MAX_FRAME`].
pub fn check_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Decodes a frame body.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(FrameError::Decode)
}

/// Writes one frame and flushes.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let frame = encode_frame(msg)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. `Ok(None)` when the peer closed the connection cleanly
/// between frames. An oversized length prefix is refused without reading
/// the body.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = check_len(header)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    decode_body(&body).map(Some)
}

/// Async framing for the host side.
#[cfg(feature = "client")]
pub mod tokio_io {
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::{FrameError, check_len, decode_body, encode_frame};

    /// Writes one frame and flushes.
    pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
        w: &mut W,
        msg: &T,
    ) -> Result<(), FrameError> {
        let frame = encode_frame(msg)?;
        w.write_all(&frame).await?;
        w.flush().await?;
        Ok(())
    }

    /// Reads one frame; `Ok(None)` on a clean close between frames.
    pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
        r: &mut R,
    ) -> Result<Option<T>, FrameError> {
        let mut header = [0u8; 4];
        let mut got = 0;
        while got < header.len() {
            match r.read(&mut header[got..]).await? {
                0 if got == 0 => return Ok(None),
                0 => return Err(FrameError::Truncated),
                n => got += n,
            }
        }
        let len = check_len(header)?;
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
        decode_body(&body).map(Some)
    }
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_all_messages() {
        let msgs = vec![
            Reply::Ok,
            Reply::Started { pid: 42 },
            Reply::Stdout {
                data: vec![0, 1, 2, 255],
            },
            Reply::Stderr { data: Vec::new() },
            Reply::Exit {
                code: Some(3),
                signal: None,
            },
            Reply::Error {
                message: "nope".into(),
            },
            Reply::Status(StatusReply {
                agent_version: "0.1.0".into(),
                protocol_version: PROTOCOL_VERSION,
                kernel_release: "6.1".into(),
                hostname: "vm".into(),
                uptime_ms: 5,
                pid1: true,
            }),
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            write_frame(&mut buf, m).unwrap();
        }
        let mut r = buf.as_slice();
        for m in &msgs {
            let got: Reply = read_frame(&mut r).unwrap().unwrap();
            assert_eq!(&got, m);
        }
        assert!(read_frame::<_, Reply>(&mut r).unwrap().is_none());
    }

    #[test]
    fn wire_shape_is_stable() {
        let frame = encode_frame(&Request::Exec(ExecRequest::new(["uname", "-r"]))).unwrap();
        assert_eq!(&frame[..4], &(frame.len() as u32 - 4).to_be_bytes());
        assert_eq!(
            std::str::from_utf8(&frame[4..]).unwrap(),
            r#"{"type":"exec","argv":["uname","-r"],"env":[],"cwd":null,"stdin":false}"#
        );
        let stdin = encode_frame(&ExecInput::Stdin {
            data: b"hi".to_vec(),
        })
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&stdin[4..]).unwrap(),
            r#"{"type":"stdin","data":"aGk="}"#
        );
        let status: Request = decode_body(br#"{"type":"status"}"#).unwrap();
        assert_eq!(status, Request::Status);
        let exec: Request = decode_body(br#"{"type":"exec","argv":["true"]}"#).unwrap();
        assert_eq!(exec, Request::Exec(ExecRequest::new(["true"])));
    }

    #[test]
    fn oversized_header_is_refused_without_reading_body() {
        let mut data = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        data.extend_from_slice(b"{}");
        let mut r = data.as_slice();
        let err = read_frame::<_, Reply>(&mut r).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len, max } if len == MAX_FRAME + 1 && max == MAX_FRAME)
        );
        assert_eq!(r, b"{}");
    }

    #[test]
    fn oversized_message_is_not_encoded() {
        let big = Reply::Stdout {
            data: vec![0; MAX_FRAME],
        };
        assert!(matches!(
            encode_frame(&big),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_and_garbage_frames() {
        let mut r: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame::<_, Reply>(&mut r),
            Err(FrameError::Truncated)
        ));
        let mut r: &[u8] = &[0, 0, 0, 10, b'{'];
        assert!(matches!(
            read_frame::<_, Reply>(&mut r),
            Err(FrameError::Truncated)
        ));
        let mut r: &[u8] = &[0, 0, 0, 2, b'x', b'y'];
        assert!(matches!(
            read_frame::<_, Reply>(&mut r),
            Err(FrameError::Decode(_))
        ));
        let mut r: &[u8] = &[0, 0, 0, 16];
        let mut data = r.to_vec();
        data.extend_from_slice(br#"{"type":"bogus"}"#);
        r = &data;
        assert!(matches!(
            read_frame::<_, Request>(&mut r),
            Err(FrameError::Decode(_))
        ));
    }
}
