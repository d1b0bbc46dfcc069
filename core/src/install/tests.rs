//! Unit tests for the install module.
