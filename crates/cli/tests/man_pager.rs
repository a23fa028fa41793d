//! `sockscope man` on a terminal shows the page formatted and paged
//! (through `man -l -`, which honours $MANPAGER and $PAGER) instead of
//! dumping roff source onto the screen; without `man` it says how to read
//! the source. Into a pipe it prints the roff source, as before. The
//! terminal is a pseudo-terminal made by util-linux's `script`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sockscope");

/// Run a shell command line on a pseudo-terminal; what the terminal showed.
fn on_terminal(cmdline: &str) -> String {
    let o = Command::new("script")
        .args(["-qec", cmdline, "/dev/null"])
        .output()
        .expect("run script (util-linux; scripts/test installs it)");
    assert!(o.status.success(), "{cmdline}: {:?}", o.status);
    String::from_utf8_lossy(&o.stdout).replace('\r', "")
}

#[test]
fn on_a_terminal_the_page_is_formatted_by_man() {
    let shown = on_terminal(&format!(
        "env MANPAGER=cat PAGER=cat MANWIDTH=80 '{BIN}' man ls"
    ));
    assert!(
        !shown.contains(".TH"),
        "roff source on the terminal:\n{shown}"
    );
    assert!(
        shown.contains("sockscope-ls(1)"),
        "a formatted page:\n{shown}"
    );
}

#[test]
fn without_man_it_says_how_to_read_the_source() {
    let shown = on_terminal(&format!("env PATH=/nonexistent '{BIN}' man ls"));
    assert!(
        shown.contains("could not run `man -l -`") && shown.contains("sockscope man ls | man -l -"),
        "{shown}"
    );
    assert!(shown.contains(".TH"), "the roff source follows:\n{shown}");
}

#[test]
fn into_a_pipe_it_is_roff() {
    let o = Command::new(BIN)
        .args(["man", "ls"])
        .output()
        .expect("run sockscope");
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH sockscope-ls"));
    assert!(o.stderr.is_empty());
}
