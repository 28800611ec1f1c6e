//! The panel's second factor: setup, enabling, checking, disabling and recovery codes.
