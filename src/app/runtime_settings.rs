//! Runtime settings changed in the panel.
