//! `cloakline apply`: a policy over a file or directory, with provenance.

use super::*;

#[derive(Args)]
pub(crate) struct ApplyArgs {
    /// Policy file (YAML).
    #[arg(long, env = "CLOAKLINE_POLICY", value_name = "FILE")]
    policy: PathBuf,
    #[command(flatten)]
    keyring: KeyringArg,
    /// Input file, or a directory of input files (the output mirrors its layout), or `-` for
    /// stdin (with --input-format). CSV/NDJSON files may be .gz or .zst.
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    /// Output file (.parquet, .csv/.tsv or .ndjson/.jsonl; CSV/NDJSON also .gz or .zst), or a
    /// directory when the input is one, or `-` for stdout (with --output-format and
    /// --provenance).
    #[arg(long, value_name = "PATH")]
    output: PathBuf,
    /// Where the provenance record goes when --output is `-` (required then: stdout has no
    /// place beside it for the sidecar). A file output's record is always its sidecar.
    #[arg(long, value_name = "FILE")]
    provenance: Option<PathBuf>,
    #[command(flatten)]
    formats: FormatArgs,
    /// Output format; default: from the output extension (Parquet for directories).
    #[arg(long, env = "CLOAKLINE_OUTPUT_FORMAT", value_parser = format_parser(), value_name = "FORMAT")]
    output_format: Option<Format>,
    /// Worker threads (1 to 1024); default: one per core.
    #[arg(long, env = "CLOAKLINE_THREADS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// Zstd compression level of Parquet output (1-22). Higher levels cost time and gain
    /// little on tokens and envelopes.
    #[arg(long, env = "CLOAKLINE_ZSTD_LEVEL", default_value_t = 1, value_name = "LEVEL",
          value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
    /// Write the output as a directory of Hive partitions (`region=EU/part-00000.parquet`),
    /// named by these output columns' values *after* the policy (a generalized or tokenized
    /// value, never the raw one). The columns leave the files, as in any Hive layout.
    #[arg(long, value_delimiter = ',', value_name = "COLUMN,…")]
    partition_by: Vec<String>,
    /// Replace an existing output: a regular file, or a directory that is a previous
    /// cloakline release (every file in it listed by its sidecar). Never a directory holding
    /// the input, a `.git`, links or devices.
    #[arg(long)]
    overwrite: bool,
    /// Print a machine-readable run summary (JSON) on stdout.
    #[arg(long)]
    json: bool,
    /// Never show the progress bar (it only shows when stderr is a terminal).
    #[arg(long, env = "CLOAKLINE_NO_PROGRESS")]
    no_progress: bool,
    /// Sign the provenance sidecar with this keyring key: Ed25519 for a signing key
    /// (`keys generate --signing`; partners check it with `verify --public-key`), HMAC-SHA256
    /// for a data key (`verify --keyring` checks it, with the same secret).
    #[arg(long, env = "CLOAKLINE_SIGN_KEY", value_name = "KEY_ID")]
    sign_key: Option<String>,
    /// Also write an OpenLineage run event (columnLineage facet plus the custom
    /// cloakline_lawfulBasis facet) to this file.
    #[arg(long, value_name = "FILE")]
    openlineage: Option<PathBuf>,
    /// OpenLineage namespace of the job and datasets.
    #[arg(long, default_value = "file", value_name = "NS")]
    openlineage_namespace: String,
    /// Write on a cluster (`df://HOST:PORT`, the scheduler of `cloakline cluster`): each
    /// executor reads input objects in place and writes their output files with its own
    /// keyring; this process records and commits the release. --input and --output must be
    /// object-store URLs (docs/CLUSTER.md).
    #[arg(long, env = "CLOAKLINE_CLUSTER", value_name = "df://HOST:PORT")]
    cluster: Option<String>,
    #[command(flatten)]
    consent: super::ConsentArgs,
}

pub(crate) fn run(a: ApplyArgs, cancel: &Cancel) -> Result<()> {
    tracing::debug!(policy = %a.policy.display(), input = %a.input.display(), output = %a.output.display(), "apply: arguments read");
    let policy = load_policy(&a.policy)?;
    let keyring = keyring_for(Some(&policy), &a.keyring)?;
    if let Some(id) = &a.sign_key
        && keyring.get(id).is_ok_and(|k| k.verifying_key().is_none())
        && let Some(w) = cloakline::provenance::sign::shared_signing_key(&policy, id)
    {
        errln!("warning: {w}");
    }
    let read = read_options(&a.formats)?;
    if !a.partition_by.is_empty() && a.output.as_os_str() == "-" {
        return Err(Error::Usage(
            "--partition-by writes a directory; name an --output directory, not `-`".into(),
        ));
    }
    let consent = a.consent.options(Some((&policy, &a.policy)))?;
    let io = StdIo::prepare(&a)?;
    let mut job = Apply::new(policy, keyring, location(&io.input), location(&io.output))
        .with_storage_options(storage())
        .with_input_format(a.formats.input_format)
        .with_output_format(a.output_format)
        .with_inference(read.infer_rows, read.all_strings)
        .with_batch_size(read.batch_size)
        .with_zstd_level(a.zstd_level)
        .with_overwrite(a.overwrite)
        .with_partition_by(a.partition_by.clone())
        .with_cancel(cancel.clone())
        .with_sign_key(a.sign_key.clone())
        .with_openlineage(a.openlineage.clone(), &a.openlineage_namespace)
        .with_cluster(a.cluster.clone())
        .with_consent(consent);
    if io.scratch.is_some() {
        if a.input.as_os_str() == "-" {
            job = job.with_input_shown_as("stdin");
        }
        if a.output.as_os_str() == "-" {
            job = job.with_output_shown_as("stdout");
        }
    }
    job = match read.delimiter_given {
        true => job.with_explicit_delimiter(read.delimiter),
        false => job.with_delimiter(read.delimiter),
    };
    if let Some(t) = a.threads {
        job = job.with_threads(t as usize);
    }
    if !a.no_progress && !a.json && std::io::stderr().is_terminal() {
        job = job.with_progress(Arc::new(Bar::default()));
    }
    let summary = runtime()?.block_on(job.run())?;
    let (output_shown, provenance_shown) = io.deliver(&summary.provenance)?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        if let Some(p) = &summary.privacy {
            let levels: Vec<String> = p
                .quasi_identifiers
                .iter()
                .map(|(n, l, h)| format!("{n}={l}/{}", h - 1))
                .collect();
            errln!(
                "privacy: smallest class {}, {} records suppressed ({:.2}%), levels {}",
                p.smallest_class,
                p.suppressed,
                p.suppressed_fraction * 100.0,
                levels.join(" ")
            );
        }
        if let Some(c) = &summary.consent {
            let nulled: u64 = c.fields_nulled.values().copied().max().unwrap_or(0);
            errln!(
                "consent ({} as of {}): {} rows in, {} removed for withdrawn consent, {} for \
                 missing consent, {} released with consent-based fields nulled",
                c.purpose,
                c.as_of,
                c.rows_in,
                c.rows_removed_withdrawn,
                c.rows_removed_missing,
                nulled
            );
        }
        errln!(
            "wrote {} ({} rows, {} fields, {} dropped) and {} in {:.2}s",
            output_shown,
            summary.rows_out,
            summary.fields.len(),
            summary.dropped.len(),
            provenance_shown,
            summary.seconds
        );
    }
    Ok(())
}

/// `--input -` and `--output -`. Stdin is spooled to a scratch file first: the privacy pass
/// reads the input twice and the record hashes it. Stdout is staged there too and copied out
/// only once the run has committed (a failed run writes nothing to stdout), its record going
/// to --provenance. The scratch directory is removed on return, failed or not.
struct StdIo {
    scratch: Option<cloakline::io::ScratchDir>,
    input: PathBuf,
    output: PathBuf,
    /// The --provenance destination of a stdout run.
    provenance: Option<PathBuf>,
}

impl StdIo {
    fn prepare(a: &ApplyArgs) -> Result<StdIo> {
        let from_stdin = a.input.as_os_str() == "-";
        let to_stdout = a.output.as_os_str() == "-";
        let usage = |m: &str| Err(Error::Usage(m.into()));
        if from_stdin && a.formats.input_format.is_none() {
            return usage(
                "--input - (stdin) has no extension to tell its format; pass --input-format \
                 csv, ndjson or parquet",
            );
        }
        if to_stdout {
            let Some(prov) = &a.provenance else {
                return usage(
                    "--output - writes the data to stdout, where no provenance sidecar can sit \
                     beside it; pass --provenance FILE for the record",
                );
            };
            if a.json {
                return usage(
                    "--json prints the summary on stdout, which --output - uses for the data; \
                     drop one of them",
                );
            }
            if a.output_format.is_none() {
                return usage(
                    "--output - has no extension to tell its format; pass --output-format parquet, csv or ndjson",
                );
            }
            if !from_stdin && a.input.is_dir() {
                return usage("--output - takes one input file, not a directory");
            }
            let mut ins = vec![("the policy", a.policy.as_path())];
            if !from_stdin {
                ins.push(("--input", a.input.as_path()));
            }
            let mut outs = vec![("--provenance", prov.as_path())];
            if let Some(o) = &a.openlineage {
                outs.push(("--openlineage", o.as_path()));
            }
            refuse_collisions(&ins, &outs)?;
            if prov.exists() && !a.overwrite {
                return Err(Error::Usage(format!(
                    "{} (--provenance) already exists; pass --overwrite to replace it",
                    prov.display()
                )));
            }
        } else if a.provenance.is_some() {
            return usage(
                "--provenance is for --output - only; a file output's record is written beside \
                 it (<OUTPUT>.provenance.json)",
            );
        }
        let mut io = StdIo {
            scratch: None,
            input: a.input.clone(),
            output: a.output.clone(),
            provenance: None,
        };
        if !from_stdin && !to_stdout {
            return Ok(io);
        }
        let scratch = cloakline::io::ScratchDir::create()?;
        if let (true, Some(f)) = (from_stdin, a.formats.input_format) {
            io.input = scratch.path().join(format!("stdin.{}", f.extension()));
            cloakline::io::spool_stdin(&io.input)?;
        }
        if let (true, Some(f)) = (to_stdout, a.output_format) {
            io.output = scratch.path().join(format!("stdout.{}", f.extension()));
            io.provenance = a.provenance.clone();
        }
        io.scratch = Some(scratch);
        Ok(io)
    }

    /// After a committed run: the record to --provenance, then the data to stdout. Returns
    /// how to name the output and the record in the summary.
    fn deliver(&self, sidecar: &Path) -> Result<(String, String)> {
        let Some(dest) = &self.provenance else {
            return Ok((
                self.output.display().to_string(),
                sidecar.display().to_string(),
            ));
        };
        let record = std::fs::read(sidecar).map_err(|e| Error::Io {
            path: sidecar.display().to_string(),
            source: e,
        })?;
        cloakline::io::write_atomically(dest, |f| std::io::Write::write_all(f, &record))?;
        cloakline::io::copy_to_stdout(&self.output)?;
        debug_assert!(self.scratch.is_some());
        Ok(("stdout".into(), dest.display().to_string()))
    }
}
