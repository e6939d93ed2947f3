//! The terminal UI opened by a bare `steward`.
//!
//! Shaped after gitui and bottom: one [`state::State`]; input becomes an
//! [`update::Action`]; [`update::update`] decides and returns [`update::Effect`]s;
//! [`draw::draw`] is a pure function of the state; the [`backend`] task owns the socket
//! client and answers with [`msg::Msg`]s over a channel, so the UI never waits on the
//! network. The screen is drawn only when an update changed something.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`state`] | the state: session, connection, the window of records, the open modal |
//! | [`update`] | every decision, permission gating ([`update::DisabledReason`]) |
//! | [`overview`] | the overview screen's data: alerts per day, JIT, DSR due dates, the audit chain |
//! | [`msg`] | the UI ↔ backend protocol ([`msg::Request`], [`msg::Msg`]) |
//! | [`keymap`] | keys as data: the one table of key commands, defaults, TOML overrides |
//! | [`form`] | contact form, JIT policy JSON editor, JIT initiate form |
//! | [`dsr`] | opening a data-subject request, the reasons of reject/extend |
//! | [`editor`] | `e`: the record in `$EDITOR`, through a private temp file |
//! | [`detail`] | the detail and help popups' geometry, wrapping, search and scroll bounds |
//! | [`draw`], [`widgets`], [`theme`] | drawing |
//! | [`export`] | export file names, OSC 52 copy |
//! | [`backend`] | the backend task: requests through `steward::client`, the events stream |
//!
//! The tabs are the kinds of [`steward::resource::Resource`]: their titles, permissions
//! and table columns come from there.
//!
//! Not here: the subcommands (`cli`), and starting a daemon (`demo`).

pub mod backend;
pub mod detail;
pub mod draw;
pub mod dsr;
pub mod editor;
pub mod export;
pub mod form;
pub mod keymap;
pub mod msg;
pub mod overview;
pub mod state;
pub mod theme;
pub mod update;
pub mod widgets;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event, EventStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use keymap::Keymap;
use msg::{Msg, Request};
use state::State;
use update::{Action, Effect, update};

/// The shortest time between two frames: at most ten redraws a second.
const FRAME: Duration = Duration::from_millis(100);

/// What the TUI needs from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiOptions {
    /// The daemon's socket.
    pub socket: PathBuf,
    /// The tenant to open (`--tenant`, `$STEWARD_TENANT`); the first granted one if `None`.
    pub tenant: Option<String>,
    /// The profile to act under (`--as`); everything held if `None`.
    pub role: Option<String>,
    /// The keys file; `None` looks at `$STEWARD_KEYS`, then
    /// `$XDG_CONFIG_HOME/steward/keys.toml`.
    pub keys: Option<PathBuf>,
}

/// The TUI was asked for without a terminal to draw on (a pipe, a cron job, `ssh host
/// steward` without `-t`): the binaries print it and exit 2 before anything is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the terminal UI needs a terminal: {0} is not one (for scripts use the subcommands, e.g. `steward alerts list`; over ssh use `ssh -t`)"
)]
pub struct NoTerminal(pub &'static str);

/// Whether stdin and stdout are both terminals, checked before anything is started (a
/// daemon, a temp dir) or written to the screen.
pub fn require_terminal() -> Result<(), NoTerminal> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(NoTerminal("stdin"));
    }
    if !std::io::stdout().is_terminal() {
        return Err(NoTerminal("stdout"));
    }
    Ok(())
}

/// Runs the TUI on a runtime of its own until the operator quits (or SIGTERM/SIGHUP).
/// Call [`run_async`] instead from inside a tokio runtime (`steward demo`).
pub fn run(opts: TuiOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(opts))
}

/// Runs the TUI on the current tokio runtime until the operator quits.
pub async fn run_async(opts: TuiOptions) -> anyhow::Result<()> {
    // Errors that need no terminal come first, so they print plainly.
    require_terminal()?;
    let keys = opts.keys.clone().or_else(Keymap::default_path);
    let keymap = Keymap::load(keys.as_deref())?;
    let mut state = State::new(keymap, opts.tenant.clone(), opts.role.clone());
    state.zone = steward::local_time::zone()?;
    state.theme = theme::Theme::from_env();
    state.clipboard = export::Clipboard::from_env();
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;

    let (msg_tx, mut msg_rx) = unbounded_channel();
    let cmd_tx = backend::spawn(opts.socket.clone(), opts.role.clone(), msg_tx);
    let _ = cmd_tx.send(Request::LoadSession);

    // ratatui::init enters raw mode and the alternate screen and installs a panic hook
    // that restores the terminal; mouse capture stays off so operators can select text.
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let result = event_loop(
        &mut terminal,
        &mut state,
        &cmd_tx,
        &mut msg_rx,
        &mut sigterm,
        &mut sighup,
    )
    .await;
    ratatui::restore();
    result
}

/// Runs the editor on `job` with the TUI suspended: raw mode and the alternate screen are
/// left for the editor's run and entered again after, and the next frame is drawn whole.
async fn suspended(
    terminal: &mut DefaultTerminal,
    job: editor::EditJob,
) -> anyhow::Result<Result<String, String>> {
    use ratatui::crossterm::{execute, terminal};
    ratatui::restore();
    let command = editor::editor_command(|k| std::env::var(k).ok());
    let result = tokio::task::spawn_blocking(move || editor::run(&job, &command))
        .await
        .map_err(|e| format!("the editor's task failed: {e}"))
        .and_then(|r| r.map_err(|e| e.to_string()));
    terminal::enable_raw_mode().context("cannot set the terminal back to raw mode")?;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        terminal::Clear(terminal::ClearType::All)
    )
    .context("cannot enter the alternate screen again")?;
    // A fresh terminal: its first frame is drawn whole (`Terminal::clear` would ask the
    // terminal where its cursor is, which not every terminal answers).
    *terminal = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
        .context("cannot redraw the terminal")?;
    Ok(result)
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    state: &mut State,
    cmd_tx: &UnboundedSender<Request>,
    msg_rx: &mut UnboundedReceiver<Msg>,
    sigterm: &mut tokio::signal::unix::Signal,
    sighup: &mut tokio::signal::unix::Signal,
) -> anyhow::Result<()> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let size = terminal.size()?;
    update(state, Action::Resize(size.width, size.height));
    // At most one frame per FRAME: a burst of answers and keys is drawn once.
    let long_ago = || {
        let now = tokio::time::Instant::now();
        now.checked_sub(FRAME).unwrap_or(now)
    };
    let mut last_draw = long_ago();
    loop {
        if state.dirty && last_draw.elapsed() >= FRAME {
            terminal.draw(|f| draw::draw(f, state))?;
            state.dirty = false;
            last_draw = tokio::time::Instant::now();
        }
        let action = tokio::select! {
            () = tokio::time::sleep_until(last_draw + FRAME), if state.dirty => continue,
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => Action::Key(k),
                Some(Ok(Event::Resize(w, h))) => Action::Resize(w, h),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                None => return Ok(()),
            },
            Some(m) = msg_rx.recv() => Action::Net(m),
            _ = tick.tick() => Action::Tick,
            _ = sigterm.recv() => return Ok(()),
            _ = sighup.recv() => return Ok(()),
        };
        // A key is drawn at once; only bursts of answers and ticks wait for the frame.
        if matches!(action, Action::Key(_)) {
            last_draw = long_ago();
        }
        let mut effects: std::collections::VecDeque<Effect> = update(state, action).into();
        while let Some(effect) = effects.pop_front() {
            match effect {
                Effect::Send(request) => {
                    let _ = cmd_tx.send(*request);
                }
                Effect::Terminal(bytes) => {
                    let mut out = std::io::stdout();
                    out.write_all(bytes.as_bytes())?;
                    out.flush()?;
                }
                Effect::Quit => return Ok(()),
                Effect::Editor(job) => {
                    // The old stream's reader thread would take the editor's keys.
                    events = EventStream::new();
                    let result = suspended(terminal, *job.clone()).await?;
                    last_draw = long_ago();
                    effects.extend(update(state, Action::Edited { job: *job, result }));
                }
            }
        }
    }
}
