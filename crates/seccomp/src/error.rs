//! The crate's one error type.

/// Everything that can go wrong in the seccomp toolkit; each variant carries
/// the failing input (file, syscall, field, value).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile file could not be read, or was refused before parsing (not a regular file, too
    /// large, not text); the error names the file.
    #[error("reading seccomp profile: {0}")]
    Input(#[from] model::input::InputError),
    /// The profile is not valid JSON or not a valid profile; `origin` is the
    /// file name (or `<string>`), `line` and `column` come from the JSON parser.
    #[error("{origin}:{line}:{column}: {message}")]
    Parse { origin: String, line: usize, column: usize, message: String },
    /// A profile that parsed but cannot be compiled as asked; `location` names
    /// where (e.g. `syscalls[3].names[1]`, or `file:line:column` when known).
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    /// A syscall name that no architecture rampart knows has, at
    /// `syscalls[entry].names[name_index]` (the legacy `name` is index 0).
    #[error("syscalls[{entry}].names[{name_index}]: unknown syscall \"{name}\" (not a syscall of {arches} nor of any other architecture rampart knows)")]
    UnknownSyscall { entry: usize, name_index: usize, name: String, arches: String },
    /// An architecture name that is not one rampart compiles for.
    #[error("unsupported architecture \"{0}\" (supported: x86_64, x86, x32, aarch64, arm)")]
    UnsupportedArch(String),
    /// The compiled program does not fit the kernel's limit.
    #[error("the compiled filter for {arches} has {insns} instructions, more than the kernel's limit of {max} (BPF_MAXINSNS)")]
    TooLarge { arches: String, insns: usize, max: usize },
    /// A BPF program the simulator cannot run (bad jump, bad load, no return).
    #[error("invalid BPF program at instruction {pc}: {message}")]
    Bpf { pc: usize, message: String },
    /// The compiled BPF and the rule model disagreed: a compiler bug, never
    /// silently accepted.
    #[error(
        "internal error: compiled filter returns {bpf} but the profile says {model} for {syscall} on {arch}"
    )]
    Mismatch { arch: String, syscall: String, bpf: String, model: String },
    /// A kernel call (prctl, seccomp) failed.
    #[error("{call}: {source}")]
    Os {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
