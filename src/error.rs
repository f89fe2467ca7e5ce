//! Transitional: the library's error type.
pub type Error = anyhow::Error;
