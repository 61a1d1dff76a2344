//! gRPC status codes and the status a call ends with.

use std::fmt;

/// A gRPC status code (the numeric value is the wire code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The wire value (`grpc-status`).
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The code of a wire value; unknown values map to [`Code::Unknown`].
    pub fn from_u32(v: u32) -> Code {
        usize::try_from(v)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    /// The case name in the `vimana:grpc/types.code` WIT enum
    /// (e.g. `invalid-argument`).
    pub fn wit_name(self) -> &'static str {
        match self {
            Code::Ok => "ok",
            Code::Cancelled => "cancelled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid-argument",
            Code::DeadlineExceeded => "deadline-exceeded",
            Code::NotFound => "not-found",
            Code::AlreadyExists => "already-exists",
            Code::PermissionDenied => "permission-denied",
            Code::ResourceExhausted => "resource-exhausted",
            Code::FailedPrecondition => "failed-precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out-of-range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data-loss",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    /// The code of a WIT enum case name.
    pub fn from_wit_name(name: &str) -> Option<Code> {
        Self::ALL.into_iter().find(|c| c.wit_name() == name)
    }

    /// The canonical upper-case name (e.g. `INVALID_ARGUMENT`), as used by
    /// gRPC tooling and in JSON error bodies.
    pub fn name(self) -> String {
        self.wit_name().replace('-', "_").to_ascii_uppercase()
    }

    /// The HTTP status of this code for JSON transcoding (as in
    /// google.api.http / grpc-gateway).
    pub fn http_status(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// How a call ended when it did not succeed: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, message)
    }

    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(Code::ResourceExhausted, message)
    }

    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(Code::DeadlineExceeded, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_wire_and_wit() {
        for (i, c) in Code::ALL.into_iter().enumerate() {
            assert_eq!(c.as_u32() as usize, i);
            assert_eq!(Code::from_u32(c.as_u32()), c);
            assert_eq!(Code::from_wit_name(c.wit_name()), Some(c));
        }
        assert_eq!(Code::from_u32(99), Code::Unknown);
        assert_eq!(Code::InvalidArgument.name(), "INVALID_ARGUMENT");
    }

    #[test]
    fn wit_enum_lists_every_code_in_order() {
        let wit = crate::GRPC_WIT;
        let mut last = 0;
        for c in Code::ALL {
            let needle = format!("        {},\n", c.wit_name());
            let pos = wit.find(&needle).unwrap_or_else(|| panic!("{c:?} missing"));
            assert!(pos >= last, "{c:?} out of order");
            last = pos;
        }
    }
}
