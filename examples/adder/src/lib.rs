//! The adder example component (see README.md).
