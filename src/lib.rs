//! intentwall
