//! The frames between host and guest agent (4-byte length + JSON). The host
//! reads replies from a guest it does not trust; the agent reads requests.

use std::fmt::Debug;
use std::io::Cursor;

use serde::Serialize;
use serde::de::DeserializeOwned;
use vimana_agent::proto::{
    ExecInput, FrameError, Reply, Request, encode_frame, read_frame, tokio_io,
};

/// Reads frames of one message type (chosen by the first byte) until the
/// input ends or a frame is refused, with the blocking (agent) and the async
/// (host) reader; both must agree, and every message must encode back.
pub fn agent_frames(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => read_all::<Request>(rest),
        1 => read_all::<Reply>(rest),
        _ => read_all::<ExecInput>(rest),
    }
}

fn read_all<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) {
    let mut sync = Cursor::new(data);
    let mut async_reader = data;
    loop {
        let a = read_frame::<_, T>(&mut sync);
        let b = futures::executor::block_on(tokio_io::read_frame::<_, T>(&mut async_reader));
        match (a, b) {
            (Ok(Some(a)), Ok(Some(b))) => {
                assert_eq!(
                    a, b,
                    "the agent and host readers decoded different messages"
                );
                round_trip(&a);
            }
            (Ok(None), Ok(None)) => return,
            (Err(a), Err(b)) if same_kind(&a, &b) => return,
            (a, b) => panic!("the agent and host readers disagree: {a:?} vs {b:?}"),
        }
    }
}

fn same_kind(a: &FrameError, b: &FrameError) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(msg: &T) {
    let frame = encode_frame(msg).unwrap_or_else(|e| panic!("{msg:?} does not encode: {e}"));
    let again = read_frame::<_, T>(&mut Cursor::new(&frame[..]))
        .unwrap_or_else(|e| panic!("the frame of {msg:?} does not decode: {e}"));
    assert_eq!(
        again.as_ref(),
        Some(msg),
        "message changed through its frame"
    );
}
