//! gcp provider (in progress)
