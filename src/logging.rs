//! Tracing set-up: one place, text or JSON, one span per request.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::settings::{LogFormat, LogSettings};

/// Replaces the filter of an installed subscriber.
pub type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// The process's log filter, changeable while it runs (runtime settings).
/// Detached (changes nothing) until a subscriber is attached. Cheap to clone.
#[derive(Clone, Default)]
pub struct LevelControl(Arc<Mutex<Option<(FilterHandle, String)>>>);

static PROCESS: OnceLock<LevelControl> = OnceLock::new();

impl LevelControl {
    /// The control of the subscriber [`init`] installed in this process.
    pub fn process() -> LevelControl {
        PROCESS.get_or_init(LevelControl::default).clone()
    }

    /// Controls `handle`, whose filter is `current` now.
    pub fn attach(&self, handle: FilterHandle, current: &str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((handle, current.to_string()));
    }

    /// The filter in force, when attached.
    pub fn current(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(_, f)| f.clone())
    }

    /// Switches to `filter` (a level such as `debug`, or a `tracing` filter)
    /// unless it is in force already; a filter that does not parse changes nothing.
    pub fn set(&self, filter: &str) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some((handle, current)) = guard.as_mut() else { return };
        if current == filter {
            return;
        }
        let parsed = match EnvFilter::try_new(filter) {
            Ok(f) => f,
            Err(err) => {
                tracing::warn!(%err, filter, "ignoring a log level that does not parse");
                return;
            }
        };
        let from = std::mem::replace(current, filter.to_string());
        let handle = handle.clone();
        drop(guard);
        match handle.reload(parsed) {
            Ok(()) => tracing::info!(%from, to = filter, "log level changed"),
            Err(err) => tracing::error!(%err, "cannot change the log level"),
        }
    }
}

/// A subscriber writing plain text to `writer` with a reloadable filter
/// (tests observe what a process would log).
pub fn reloadable<W>(filter: &str, writer: W) -> (impl tracing::Subscriber + Send + Sync, FilterHandle)
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let (layer, handle) = reload::Layer::new(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")));
    let subscriber = tracing_subscriber::registry().with(layer).with(fmt::layer().with_ansi(false).with_writer(writer));
    (subscriber, handle)
}

/// Installs the global subscriber. Safe to call once per process. Colours
/// only on a terminal: a log file, `docker logs` and the live-logs page get
/// plain text. The filter stays changeable through [`LevelControl::process`].
pub fn init(settings: &LogSettings) {
    let level = if EnvFilter::try_new(&settings.level).is_ok() { settings.level.as_str() } else { "info" };
    let (filter, handle) = reload::Layer::new(EnvFilter::new(level));
    let registry = tracing_subscriber::registry().with(filter);
    let layer = fmt::layer().with_writer(std::io::stderr).with_target(false).with_ansi(std::io::stderr().is_terminal());
    let installed = match settings.format {
        LogFormat::Json => registry.with(layer.json().flatten_event(true)).try_init(),
        LogFormat::Text => registry.with(layer).try_init(),
    };
    if installed.is_ok() {
        LevelControl::process().attach(handle, level);
    }
}
