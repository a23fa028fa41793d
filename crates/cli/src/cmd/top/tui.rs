//! The terminal side of `top`: raw mode and the alternate screen (always
//! restored: on exit, on panic through a panic hook, on SIGTERM/SIGINT),
//! keys and mouse, and drawing the views with ratatui.

use super::data::{Data, Sampler};
use super::views::{self, Mark, View};
use crate::cli::Cli;
use crate::{FOUND, Fail};
use crossterm::event::{
    self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Tabs};
use std::io::Write;
use std::time::{Duration, Instant};

/// SIGINT / SIGTERM: a flag the loops poll (the handler only stores it).
use crate::signals;

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(
        out,
        crossterm::event::DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Restores the terminal when dropped (normal exit and error paths).
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn enter_terminal() -> std::io::Result<Guard> {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    let g = Guard;
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::event::EnableMouseCapture,
        crossterm::cursor::Hide
    )?;
    Ok(g)
}

struct Styles {
    header: Style,
    selected: Style,
    new: Style,
    closed: Style,
    alert: Style,
    status: Style,
}

impl Styles {
    fn new(color: bool) -> Styles {
        let s = Style::default();
        if color {
            Styles {
                header: s.fg(Color::Black).bg(Color::Cyan),
                selected: s.add_modifier(Modifier::REVERSED),
                new: s.fg(Color::Green).add_modifier(Modifier::BOLD),
                closed: s.fg(Color::DarkGray).add_modifier(Modifier::DIM),
                alert: s.fg(Color::Red).add_modifier(Modifier::BOLD),
                status: s.fg(Color::Yellow),
            }
        } else {
            Styles {
                header: s.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                selected: s.add_modifier(Modifier::REVERSED),
                new: s.add_modifier(Modifier::BOLD),
                closed: s.add_modifier(Modifier::DIM),
                alert: s.add_modifier(Modifier::BOLD),
                status: s,
            }
        }
    }
}

const HELP: &[&str] = &[
    "1 2 3 4, Tab, Shift-Tab   connections, processes, listeners, namespaces",
    "Up Down PgUp PgDn Home End   move the selection",
    "< >  or a click on a header   sort column (click again: reverse)",
    "r                          reverse the sort",
    "/                          filter (ss syntax, as `ls`); empty: none",
    "Enter                      the `who` chain of the row (processes:",
    "                           their connections); Esc closes",
    "space                      pause / resume refreshing",
    "?                          this help",
    "q, Esc, Ctrl-C             quit",
    "",
    "Bold rows are new since the last refresh; dim rows closed",
    "(kept 3 s). In/s Out/s: bytes received / acked per second.",
];

struct App {
    view: View,
    sort: [Option<(usize, bool)>; 4],
    sel: [usize; 4],
    sel_key: Option<sockscope::live::Key>,
    top: [usize; 4],
    order: Vec<(usize, Mark)>,
    paused: bool,
    filter_text: String,
    input: Option<String>,
    filter_error: Vec<String>,
    detail: Option<(String, Vec<String>, usize)>,
    help: bool,
    header_y: u16,
    body_y: u16,
    body_h: u16,
    layout: Vec<(usize, u16, u16)>,
}

impl App {
    /// Show `view`: compute its rows from the last refresh, then order them.
    fn switch(&mut self, view: View, data: &mut Data, sampler: &Sampler) {
        self.view = view;
        sampler.derive(data, view);
        self.resort(data);
    }

    fn resort(&mut self, data: &Data) {
        let v = self.view.index();
        self.order = views::order(data, self.view, self.sort[v]);
        // Keep the selected connection under the cursor across refreshes.
        if self.view == View::Connections
            && let Some(k) = self.sel_key
            && let Some(p) = self
                .order
                .iter()
                .position(|(i, _)| sockscope::live::key_of(&data.frame.sockets[*i]) == k)
        {
            self.sel[v] = p;
        }
        self.clamp();
    }

    fn clamp(&mut self) {
        let v = self.view.index();
        let n = self.order.len();
        if self.sel[v] >= n {
            self.sel[v] = n.saturating_sub(1);
        }
    }

    fn remember(&mut self, data: &Data) {
        if self.view == View::Connections {
            self.sel_key = self
                .order
                .get(self.sel[0])
                .map(|(i, _)| sockscope::live::key_of(&data.frame.sockets[*i]));
        }
    }

    fn set_sort(&mut self, col: usize) {
        let v = self.view.index();
        let desc = self.view.columns()[col].desc;
        self.sort[v] = match self.sort[v] {
            Some((c, d)) if c == col => Some((c, !d)),
            _ => Some((col, desc)),
        };
    }
}

pub fn run(
    args: &super::TopArgs,
    _cli: &Cli,
    mut sampler: Sampler,
    interval: Duration,
    color: bool,
) -> Result<u8, Fail> {
    signals::install();
    let panic_after: Option<u64> = std::env::var("SOCKSCOPE_TOP_PANIC_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    let guard = enter_terminal().map_err(|e| Fail::system(format!("terminal: {e}")))?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))
        .map_err(|e| Fail::system(format!("terminal: {e}")))?;
    let styles = Styles::new(color);
    let mut data = Data::default();
    let mut app = App {
        view: args.view.unwrap_or(View::Connections),
        sort: [None, Some((2, true)), None, None],
        sel: [0; 4],
        sel_key: None,
        top: [0; 4],
        order: Vec::new(),
        paused: false,
        filter_text: args.filter.join(" "),
        input: None,
        filter_error: Vec::new(),
        detail: None,
        help: false,
        header_y: 2,
        body_y: 3,
        body_h: 0,
        layout: Vec::new(),
    };
    let mut next = Instant::now();
    let mut dirty = true;
    let result = loop {
        if signals::stop_requested() {
            break Ok(FOUND);
        }
        let now = Instant::now();
        if !app.paused && now >= next {
            if let Err(e) = sampler.refresh(&mut data, &[app.view]) {
                break Err(e);
            }
            next = Instant::now().max(next + interval);
            if let Some(n) = panic_after
                && data.refreshes >= n
            {
                panic!(
                    "SOCKSCOPE_TOP_PANIC_AFTER={n}: panicking on purpose (test of the panic hook)"
                );
            }
            app.resort(&data);
            dirty = true;
        }
        if dirty {
            if let Err(e) = term.draw(|f| draw(f, &mut app, &data, &sampler, &styles, interval)) {
                break Err(Fail::system(format!("drawing: {e}")));
            }
            dirty = false;
        }
        let wait = if app.paused {
            Duration::from_millis(200)
        } else {
            next.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200))
        };
        match event::poll(wait) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => break Err(Fail::system(format!("reading the terminal: {e}"))),
        }
        // Handle every key already typed before the next refresh or draw.
        let mut quit = None;
        loop {
            let ev = match event::read() {
                Ok(ev) => ev,
                Err(e) => {
                    quit = Some(Err(Fail::system(format!("reading the terminal: {e}"))));
                    break;
                }
            };
            dirty = true;
            match on_event(ev, &mut app, &mut data, &mut sampler) {
                Action::Quit => {
                    quit = Some(Ok(FOUND));
                    break;
                }
                Action::Refresh => next = Instant::now(),
                Action::None => {}
            }
            if !matches!(event::poll(Duration::ZERO), Ok(true)) {
                break;
            }
        }
        if let Some(r) = quit {
            break r;
        }
    };
    drop(term);
    drop(guard);
    result
}

fn on_event(ev: Event, app: &mut App, data: &mut Data, sampler: &mut Sampler) -> Action {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => return on_key(k, app, data, sampler),
        Event::Mouse(m) => {
            if let MouseEventKind::Down(MouseButton::Left) = m.kind {
                on_click(m.column, m.row, app, data, sampler);
            } else if let MouseEventKind::ScrollDown = m.kind {
                move_sel(app, data, 3);
            } else if let MouseEventKind::ScrollUp = m.kind {
                move_sel(app, data, -3);
            }
        }
        _ => {}
    }
    Action::None
}

enum Action {
    None,
    Quit,
    Refresh,
}

fn move_sel(app: &mut App, data: &Data, by: isize) {
    let v = app.view.index();
    let n = app.order.len() as isize;
    app.sel[v] = (app.sel[v] as isize + by).clamp(0, (n - 1).max(0)) as usize;
    app.remember(data);
}

fn on_key(k: KeyEvent, app: &mut App, data: &mut Data, sampler: &mut Sampler) -> Action {
    // The filter line takes every key until Enter or Esc.
    if let Some(input) = app.input.as_mut() {
        match k.code {
            KeyCode::Esc => app.input = None,
            KeyCode::Enter => {
                let text = input.trim().to_string();
                match sockscope::query::parse(std::slice::from_ref(&text)) {
                    Ok(f) => {
                        sampler.filter = f;
                        app.filter_text = text;
                        app.filter_error.clear();
                        app.input = None;
                        sampler.apply_filter(data);
                        app.resort(data);
                        return Action::Refresh;
                    }
                    Err(e) => {
                        app.filter_error = e.to_string().lines().map(str::to_string).collect();
                    }
                }
            }
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                return Action::Quit;
            }
            KeyCode::Char(c) => input.push(c),
            _ => {}
        }
        return Action::None;
    }
    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
        return Action::Quit;
    }
    if let Some((_, lines, scroll)) = app.detail.as_mut() {
        match k.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => app.detail = None,
            KeyCode::Down | KeyCode::Char('j') => {
                *scroll = (*scroll + 1).min(lines.len().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
            KeyCode::PageDown => *scroll = (*scroll + 10).min(lines.len().saturating_sub(1)),
            KeyCode::PageUp => *scroll = scroll.saturating_sub(10),
            _ => {}
        }
        return Action::None;
    }
    if app.help {
        app.help = false;
        if !matches!(k.code, KeyCode::Char('q')) {
            return Action::None;
        }
    }
    let v = app.view.index();
    let page = app.body_h.max(1) as isize;
    match k.code {
        KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
        KeyCode::Char(c @ '1'..='4') => {
            app.switch(View::ALL[(c as u8 - b'1') as usize], data, sampler)
        }
        KeyCode::Tab => app.switch(View::ALL[(v + 1) % 4], data, sampler),
        KeyCode::BackTab => app.switch(View::ALL[(v + 3) % 4], data, sampler),
        KeyCode::Down | KeyCode::Char('j') => move_sel(app, data, 1),
        KeyCode::Up | KeyCode::Char('k') => move_sel(app, data, -1),
        KeyCode::PageDown => move_sel(app, data, page),
        KeyCode::PageUp => move_sel(app, data, -page),
        KeyCode::Home | KeyCode::Char('g') => move_sel(app, data, isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => move_sel(app, data, isize::MAX / 2),
        KeyCode::Char(' ') => app.paused = !app.paused,
        KeyCode::Char('?') | KeyCode::Char('h') => app.help = true,
        KeyCode::Char('/') => {
            app.input = Some(app.filter_text.clone());
            app.filter_error.clear();
        }
        KeyCode::Char('r') => {
            if let Some((c, d)) = app.sort[v] {
                app.sort[v] = Some((c, !d));
            }
            app.resort(data);
        }
        KeyCode::Char(c @ ('<' | '>' | 's')) => {
            let cols: Vec<usize> = app.layout.iter().map(|l| l.0).collect();
            if !cols.is_empty() {
                let cur = app.sort[v].and_then(|(c, _)| cols.iter().position(|x| *x == c));
                let n = cols.len();
                let p = match (cur, c) {
                    (None, '<') => n - 1,
                    (None, _) => 0,
                    (Some(p), '<') => (p + n - 1) % n,
                    (Some(p), _) => (p + 1) % n,
                };
                let col = cols[p];
                app.sort[v] = Some((col, app.view.columns()[col].desc));
                app.resort(data);
            }
        }
        KeyCode::Enter => open_detail(app, data, sampler),
        _ => {}
    }
    Action::None
}

fn open_detail(app: &mut App, data: &mut Data, sampler: &mut Sampler) {
    let v = app.view.index();
    let Some(&(i, _)) = app.order.get(app.sel[v]) else {
        return;
    };
    let socket = match app.view {
        View::Connections => data.frame.sockets[i].clone(),
        View::Listeners => data.listeners[i].listener.clone(),
        View::Processes => {
            // A process: its connections.
            let pid = data.processes[i].pid;
            let text = format!("pid = {pid}");
            if let Ok(f) = sockscope::query::parse(std::slice::from_ref(&text)) {
                sampler.filter = f;
                app.filter_text = text;
                sampler.apply_filter(data);
                app.sel[0] = 0;
                app.switch(View::Connections, data, sampler);
            }
            return;
        }
        View::Namespaces => return,
    };
    let title = sockscope::view::explain::socket_line(&socket);
    let lines = super::chain_lines(sampler, &socket);
    app.detail = Some((title, lines, 0));
}

fn on_click(x: u16, y: u16, app: &mut App, data: &mut Data, sampler: &Sampler) {
    if app.detail.is_some() || app.help {
        return;
    }
    if y == 0 {
        // The tabs: " 1 Connections │ 2 Processes │ ..."
        let mut start = 0u16;
        for v in View::ALL {
            let w = v.title().len() as u16 + 3;
            if x >= start && x < start + w {
                app.switch(v, data, sampler);
                return;
            }
            start += w;
        }
        return;
    }
    if y == app.header_y {
        if let Some(&(col, _, _)) = app
            .layout
            .iter()
            .find(|(_, cx, w)| x >= *cx && x < cx + w + 1)
        {
            app.set_sort(col);
            app.resort(data);
        }
        return;
    }
    if y >= app.body_y && y < app.body_y + app.body_h {
        let v = app.view.index();
        let p = app.top[v] + (y - app.body_y) as usize;
        if p < app.order.len() {
            app.sel[v] = p;
            app.remember(data);
        }
    }
}

fn draw(
    f: &mut ratatui::Frame,
    app: &mut App,
    data: &Data,
    sampler: &Sampler,
    st: &Styles,
    interval: Duration,
) {
    let area = f.area();
    let (w, h) = (area.width, area.height);
    if h < 6 || w < 20 {
        f.render_widget(Paragraph::new("terminal too small"), area);
        return;
    }
    let v = app.view.index();
    let tabs = Tabs::new(View::ALL.iter().map(|v| v.title()).collect::<Vec<_>>())
        .select(v)
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD));
    f.render_widget(tabs, Rect::new(0, 0, w, 1));

    let live = data
        .frame
        .info
        .iter()
        .filter(|i| i.status != sockscope::live::RowStatus::Closed)
        .count();
    let mut status = String::new();
    if app.paused {
        status.push_str("PAUSED  ");
    }
    status.push_str(&format!(
        "{}/{live} sockets  +{} -{}  every {:.1}s, read in {:.0} ms",
        data.visible.len(),
        data.frame.opened,
        data.frame.closed,
        interval.as_secs_f64(),
        data.took_ms
    ));
    if !app.filter_text.is_empty() {
        status.push_str(&format!(
            "  filter: {}",
            sockscope::view::escape::escape_str(&app.filter_text)
        ));
    }
    f.render_widget(
        Paragraph::new(Line::styled(
            views::fit(&status, w as usize, false),
            st.status,
        )),
        Rect::new(0, 1, w, 1),
    );

    let cols = app.view.columns();
    app.layout = views::layout(cols, w);
    app.header_y = 2;
    f.render_widget(
        Paragraph::new(Line::styled(
            views::fit(
                &views::header(cols, &app.layout, app.sort[v]),
                w as usize,
                false,
            ),
            st.header,
        )),
        Rect::new(0, 2, w, 1),
    );
    let mut footer = views::footer(data, app.view);
    // Warnings (namespaces left out, fd tables not readable) are shown, not
    // printed: stderr is this screen.
    footer.extend(
        data.warnings
            .iter()
            .map(|w| format!("! {}", sockscope::view::escape::escape_str(w))),
    );
    let bottom = 1 + footer.len().min(3) as u16 + app.filter_error.len().min(4) as u16;
    app.body_y = 3;
    app.body_h = h.saturating_sub(3 + bottom);
    // Scroll so that the selection is on screen.
    let bh = app.body_h as usize;
    if app.sel[v] < app.top[v] {
        app.top[v] = app.sel[v];
    } else if bh > 0 && app.sel[v] >= app.top[v] + bh {
        app.top[v] = app.sel[v] + 1 - bh;
    }
    if app.top[v] + bh > app.order.len() {
        app.top[v] = app.order.len().saturating_sub(bh);
    }
    let mut lines = Vec::with_capacity(bh);
    for (p, &(i, mark)) in app.order.iter().enumerate().skip(app.top[v]).take(bh) {
        let text = views::join_cells(
            cols,
            &app.layout,
            &views::cells(data, app.view, i, &app.layout),
        );
        let mut style = match mark {
            Mark::Plain => Style::default(),
            Mark::New => st.new,
            Mark::Closed => st.closed,
            Mark::Alert => st.alert,
        };
        if p == app.sel[v] {
            style = style.patch(st.selected);
        }
        lines.push(Line::styled(views::fit(&text, w as usize, false), style));
    }
    if app.order.is_empty() {
        lines.push(Line::raw(if data.refreshes == 0 {
            "reading the kernel's tables..."
        } else {
            "(no rows)"
        }));
    }
    f.render_widget(Paragraph::new(lines), Rect::new(0, 3, w, app.body_h));

    let mut y = 3 + app.body_h;
    for l in footer.iter().take(3) {
        f.render_widget(
            Paragraph::new(views::fit(l, w as usize, false)),
            Rect::new(0, y, w, 1),
        );
        y += 1;
    }
    for l in app.filter_error.iter().take(4) {
        f.render_widget(
            Paragraph::new(Line::styled(views::fit(l, w as usize, false), st.alert)),
            Rect::new(0, y, w, 1),
        );
        y += 1;
    }
    let hint = match &app.input {
        Some(t) => Line::from(vec![
            Span::styled("filter: ", st.header),
            Span::raw(sockscope::view::escape::escape_str(t).into_owned()),
            Span::raw("_"),
        ]),
        None => Line::raw(views::fit(
            "q quit  ? help  1-4 views  / filter  < > sort  r reverse  Enter who  space pause",
            w as usize,
            false,
        )),
    };
    f.render_widget(Paragraph::new(hint), Rect::new(0, h - 1, w, 1));

    if let Some((title, lines, scroll)) = &app.detail {
        let r = Rect::new(1, 1, w - 2, h - 2);
        f.render_widget(Clear, r);
        let body: Vec<Line> = lines
            .iter()
            .skip(*scroll)
            .map(|l| Line::raw(l.clone()))
            .collect();
        let t = views::fit(&format!(" who: {title} "), (w - 4) as usize, false);
        f.render_widget(
            Paragraph::new(body).block(
                Block::bordered()
                    .title(t.trim_end().to_string())
                    .title_bottom(" Up/Down scroll  Esc close "),
            ),
            r,
        );
    } else if app.help {
        let hh = (HELP.len() as u16 + 2).min(h - 2);
        let r = Rect::new(1, 1, w - 2, hh);
        f.render_widget(Clear, r);
        let body: Vec<Line> = HELP.iter().map(|l| Line::raw(*l)).collect();
        f.render_widget(
            Paragraph::new(body).block(Block::bordered().title(" keys (any key closes) ")),
            r,
        );
    }
    let _ = sampler;
}
