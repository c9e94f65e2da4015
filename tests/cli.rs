//! The command line itself: listing, version, unknown commands. No server needed.

mod support;

use support::run_bin;

#[tokio::test]
async fn help_and_no_argument_list_every_command_on_one_line() {
    for args in [&["--help"][..], &["help"][..]] {
        let run = run_bin(args, &[]).await;
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        let line = run
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("validate_changes_collection"))
            .expect("listed");
        assert!(
            line.contains("Check that monitor/changes timestamps"),
            "{line}"
        );
    }
    let run = run_bin(&[], &[]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("validate_changes_collection"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn version_names_the_binary() {
    let run = run_bin(&["--version"], &[]).await;
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout.trim(),
        format!("remote-settings-lambdas {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn an_unknown_command_is_named_with_the_list_and_exit_2() {
    let run = run_bin(&["validate_everything"], &[]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("error: unknown command 'validate_everything'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("validate_changes_collection"));
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn secrets_do_not_show_in_help() {
    let run = run_bin(
        &["--help"],
        &[
            ("AUTH", "user:hunter2-marker"),
            ("SENTRY_DSN", "http://k@h/1"),
        ],
    )
    .await;
    assert_eq!(run.code, 0);
    assert!(!run.stdout.contains("hunter2-marker"));
    assert!(!run.stdout.contains("http://k@h/1"));
}
