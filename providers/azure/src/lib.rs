//! azure provider (in progress)
