//! schemathesis against a live `weir serve`: it reads `/openapi.json`,
//! generates requests from it (valid ones and ones the schemas say are
//! invalid) and checks every answer: never a 5xx, only documented status
//! codes and content types, bodies that match their schemas, and invalid
//! data refused. Any finding fails the test, with schemathesis's report.
//!
//! schemathesis is installed once (pinned) into a virtualenv under
//! `~/.cache/weir` (or `$WEIR_SCHEMATHESIS_VENV`); `python3-venv` comes
//! from apt when the interpreter lacks it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod api_common;
use api_common::{Daemon, WEIR};

const VERSION: &str = "4.32.5";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed:\n{text}"))
    }
}

/// The schemathesis executable, installed on first use.
fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("WEIR_SCHEMATHESIS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or("/tmp".into());
            home.join(".cache/weir")
                .join(format!("schemathesis-{VERSION}"))
        });
    let bin = venv.join("bin/schemathesis");
    let installed = || run(Command::new(&bin).arg("--version")).is_ok_and(|v| v.contains(VERSION));
    if installed() {
        return bin;
    }
    // A half-made venv (an interrupted install) is cleared and redone.
    let venv_cmd = || {
        let mut c = Command::new("python3");
        c.args(["-m", "venv", "--clear"]).arg(&venv);
        c
    };
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    if run(&mut venv_cmd()).is_err() {
        let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib.sh");
        run(Command::new("bash").arg("-c").arg(format!(
            "source {} && apt_install python3-venv",
            lib.display()
        )))
        .unwrap_or_else(|e| panic!("installing python3-venv: {e}"));
        run(&mut venv_cmd()).unwrap_or_else(|e| panic!("{e}"));
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("schemathesis=={VERSION}")))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        installed(),
        "schemathesis {VERSION} did not install into {}",
        venv.display()
    );
    bin
}

#[test]
fn openapi_document_matches_the_server() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let store = dir.path().join("store.redb");
    let serve = Daemon::start_on(
        Command::new(WEIR),
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &[
            "--store",
            store.to_str().unwrap(),
            "--node",
            "t",
            "--no-mirror",
        ],
    );
    let report = dir.path().join("report");
    let t = Instant::now();
    let out = Command::new(&st)
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,negative_data_rejection",
            // A watch streams until the client leaves: nothing to check
            // in a bounded run.
            "--exclude-path",
            "/v1/watch",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--max-time",
            "75",
            "--seed",
            "9",
            "--workers",
            "2",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
        ])
        .arg(&report)
        // It keeps state in ./.schemathesis: keep that in the tempdir.
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems ({:?}):\n{text}\nweir log:\n{}",
        t.elapsed(),
        serve.log()
    );
    // It did test: every operation but the watch.
    assert!(text.contains("passed"), "{text}");
    assert!(!text.contains("errored"), "{text}");
    eprintln!("schemathesis in {:?}:\n{text}", t.elapsed());
}
