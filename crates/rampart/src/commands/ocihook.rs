//! Metadata-scoped kill rules before a container's entrypoint: the runtime
//! wrapper (`rampart-runc`, a link to this binary, registered with dockerd
//! or given to ctr as its runc) and the hook it adds (`rampart oci-hook`);
//! crates/respond/src/ocihook.rs.

use anyhow::{Context, Result};
use clap::Args;
use respond::ocihook::{bundle_of, hook_bundle, hooks_d_json, run_hook, DEFAULT_SOCKET, MAX_STATE};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

#[derive(Args)]
pub struct OciHookArgs {
    /// The agent's hook socket (`rampart run --oci-hook-socket`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Refuse the container (runc fails its start) when the agent cannot
    /// confirm the kill rules are armed; by default it starts, said on stderr.
    #[arg(long)]
    fail_closed: bool,
    /// Print a hooks.d file (podman, CRI-O: `oci-hooks(5)`) that runs this
    /// binary as the hook with these options, instead of running as one.
    /// Install it as /etc/containers/oci/hooks.d/rampart.json (or in a
    /// directory given to `podman --hooks-dir`).
    #[arg(long)]
    hooks_d_json: bool,
}

/// `rampart oci-hook`: runc's createRuntime hook, the OCI state on stdin.
pub fn hook(args: OciHookArgs) -> Result<()> {
    if args.hooks_d_json {
        let exe = std::env::current_exe().context("this binary's path")?;
        print!(
            "{}",
            hooks_d_json(
                &exe.to_string_lossy(),
                &hook_args(&args.socket.to_string_lossy(), args.fail_closed)
            )
        );
        return Ok(());
    }
    let mut state = Vec::new();
    std::io::stdin().take(MAX_STATE as u64 + 1).read_to_end(&mut state).context("reading the OCI state")?;
    if state.len() > MAX_STATE {
        anyhow::bail!("the OCI state on stdin is over {MAX_STATE} bytes");
    }
    match run_hook(&state, &args.socket) {
        Ok(_) => Ok(()),
        Err(e) if args.fail_closed => anyhow::bail!("oci-hook: {e}; refusing the container (--fail-closed)"),
        Err(e) => {
            eprintln!(
                "rampart oci-hook: {e}; the container starts without metadata-scoped kill rules armed before its entrypoint"
            );
            Ok(())
        }
    }
}

/// The hook's command line (`argv[0]` first): the socket only when not the
/// default one.
fn hook_args(socket: &str, fail_closed: bool) -> Vec<String> {
    let mut args = vec!["rampart".to_string(), "oci-hook".into()];
    if socket != DEFAULT_SOCKET {
        args.extend(["--socket".into(), socket.to_string()]);
    }
    if fail_closed {
        args.push("--fail-closed".into());
    }
    args
}

/// `rampart-runc ARGS`: runc's command line, passed to runc (`RAMPART_RUNC`,
/// default `runc` on the PATH) after `create` and `run` had the hook added to
/// the bundle's config.json. `RAMPART_OCI_HOOK_SOCKET` and
/// `RAMPART_OCI_HOOK_FAIL_CLOSED=1` set the hook's options. A spec that cannot
/// be extended is passed on unchanged (fail open, said on stderr) unless
/// fail-closed.
pub fn runtime_main(args: Vec<String>) -> std::process::ExitCode {
    let runc = std::env::var("RAMPART_RUNC").unwrap_or_else(|_| "runc".into());
    let socket = std::env::var("RAMPART_OCI_HOOK_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.into());
    let fail_closed = std::env::var("RAMPART_OCI_HOOK_FAIL_CLOSED").is_ok_and(|v| v == "1");
    if let Some(bundle) = bundle_of(&args) {
        let added = std::env::current_exe()
            .map_err(|e| format!("this binary's path: {e}"))
            .and_then(|exe| hook_bundle(&bundle, &exe.to_string_lossy(), &hook_args(&socket, fail_closed)));
        if let Err(e) = added {
            eprintln!("rampart-runc: cannot add rampart's hook: {e}");
            if fail_closed {
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let e = std::process::Command::new(&runc).args(&args).exec();
    eprintln!("rampart-runc: exec {runc}: {e}");
    std::process::ExitCode::FAILURE
}
