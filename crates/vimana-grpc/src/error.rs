//! Errors raised while building a [`crate::Contract`] or its WIT text.

/// Why a descriptor set could not be mapped onto the component model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// Compiling `.proto` files with protox failed.
    #[error("compiling protos: {0}")]
    Compile(String),
    /// The bytes are not a valid `FileDescriptorSet`.
    #[error("invalid descriptor set: {0}")]
    Descriptor(String),
    /// A protobuf name has no valid WIT identifier.
    #[error("cannot map name `{name}` to a WIT identifier: {reason}")]
    InvalidName {
        /// The protobuf name as written.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two protobuf names map to the same WIT name in one scope.
    #[error("`{first}` and `{second}` both map to the WIT name `{wit}` in {scope}")]
    NameCollision {
        /// Where the names collide (a message, enum or interface).
        scope: String,
        /// The shared WIT name.
        wit: String,
        /// The first protobuf name.
        first: String,
        /// The second protobuf name.
        second: String,
    },
    /// A message contains itself; WIT types cannot be recursive.
    #[error("recursive message type (WIT types cannot be recursive): {cycle}")]
    Recursive {
        /// The cycle, e.g. `pkg.Node -> pkg.Node`.
        cycle: String,
    },
}
