//! `cloakline keys`: keyring management.

use super::*;
use cloakline::keys::{KekSpec, KeyPurpose, wrap};

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Add a new random 256-bit key to a keyring (created if missing, owner-only permissions).
    Generate {
        /// Id of the new key, as the policy will refer to it (A-Z a-z 0-9 . _ - :).
        #[arg(long)]
        id: String,
        /// Make an Ed25519 signing key (for `apply --sign-key`): partners verify its
        /// signatures with the public key alone (`keys export-public`). It cannot tokenize or
        /// encrypt.
        #[arg(long)]
        signing: bool,
        #[command(flatten)]
        keyring: KeyringArg,
    },
    /// Write the public half of an Ed25519 signing key (PEM), for partners to run
    /// `cloakline verify --public-key FILE`. It reveals nothing that decrypts or re-identifies.
    ExportPublic {
        /// Id of the signing key.
        #[arg(long)]
        id: String,
        /// Where to write the PEM file (default: standard output).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        keyring: KeyringArg,
    },
    /// Add a new version of a key and make it primary (works on plain and wrapped
    /// keyrings). `encrypt` uses the primary from then on; old envelopes still decrypt (they
    /// name their version). Deterministic transforms (tokenize, encrypt_deterministic, fpe)
    /// must then name a version in the policy (`key: k1@v2`): their output changes with it.
    Rotate {
        /// Id of the key to rotate.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        keyring: KeyringArg,
    },
    /// List a keyring's keys (id, purpose, fingerprint, created) and what protects them. Needs
    /// no passphrase or PIN: a wrapped keyring records its fingerprints.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        keyring: KeyringArg,
    },
    /// Write a copy of a plain keyring whose keys are wrapped under a key-encryption key: a
    /// passphrase (Argon2id, from CLOAKLINE_KEYRING_PASSPHRASE or a prompt) or an AES key on a
    /// PKCS#11 token (PIN from CLOAKLINE_PKCS11_PIN or a prompt). Runs then need the
    /// passphrase or token; the plain file can be destroyed.
    Wrap {
        /// Where to write the wrapped keyring (must not exist).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// Wrap under an AES key on a PKCS#11 token, loaded through this module
        /// (e.g. /usr/lib/softhsm/libsofthsm2.so). Without it: a passphrase.
        #[arg(long, value_name = "MODULE")]
        pkcs11_module: Option<PathBuf>,
        /// The token's label.
        #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
        token_label: Option<String>,
        /// The label of the AES key-encryption key on the token.
        #[arg(
            long,
            value_name = "LABEL",
            requires = "pkcs11_module",
            default_value = "cloakline-kek"
        )]
        key_label: String,
        /// Generate the key-encryption key on the token (sensitive, not extractable) when
        /// no key has its label.
        #[arg(long, requires = "pkcs11_module")]
        pkcs11_create_kek: bool,
        /// Argon2id memory in KiB (passphrase only; at least 19456).
        #[arg(long, value_name = "KIB", default_value_t = wrap::DEFAULT_M_COST_KIB)]
        argon2_memory_kib: u32,
        /// Argon2id passes (passphrase only; at least 2).
        #[arg(long, value_name = "N", default_value_t = wrap::DEFAULT_T_COST)]
        argon2_passes: u32,
        #[command(flatten)]
        keyring: KeyringArg,
    },
    /// Write a plain copy of a wrapped keyring (hex secrets, owner-only). Needs the
    /// passphrase or token; use it to migrate, then destroy the copy.
    Unwrap {
        /// Where to write the plain keyring (must not exist).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        keyring: KeyringArg,
    },
}

/// Refuse to write over an existing file (a keyring is not replaced by accident).
fn fresh(out: &Path) -> Result<()> {
    if out.exists() || out.is_symlink() {
        return Err(Error::Usage(format!(
            "{} exists; choose another file or remove it first",
            out.display()
        )));
    }
    Ok(())
}

fn keyring_path(keyring: KeyringArg) -> Result<PathBuf> {
    keyring.keyring.ok_or_else(|| {
        Error::Usage("name the keyring file with --keyring FILE (or CLOAKLINE_KEYRING)".into())
    })
}

pub(crate) fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Generate {
            id,
            signing,
            keyring,
        } => {
            let path = keyring_path(keyring)?;
            let purpose = if signing {
                KeyPurpose::Signing
            } else {
                KeyPurpose::Data
            };
            let fp = Keyring::generate_into_file_as(&path, &id, purpose)?;
            let kind = if signing {
                "Ed25519 signing key"
            } else {
                "key"
            };
            errln!("added {kind} {id} (fingerprint {fp}) to {}", path.display());
            Ok(())
        }
        KeysCommand::Rotate { id, keyring } => {
            let path = keyring_path(keyring)?;
            let (version, fp) = Keyring::rotate_in_file(&path, &id)?;
            errln!(
                "added {id}@v{version} (fingerprint {fp}) to {} and made it primary; encrypt uses it now.                  Tokens stay as they were until a policy names `key: {id}@v{version}`",
                path.display()
            );
            Ok(())
        }
        KeysCommand::List { json, keyring } => {
            let path = keyring_path(keyring)?;
            let (keys, kek) = cloakline::keys::list_file(&path)?;
            let protection = kek
                .as_ref()
                .map(KekSpec::describe)
                .unwrap_or_else(|| "none: plain key material in the file".into());
            if json {
                let doc = serde_json::json!({
                    "keyring": path.display().to_string(),
                    "protection": protection,
                    "provider": kek.as_ref().map(KekSpec::provider),
                    "keys": keys,
                });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                outln!("keyring     {}", path.display());
                outln!("protection  {protection}");
                for k in &keys {
                    let name = match k.version {
                        1 => k.id.clone(),
                        v => format!("{}@v{v}", k.id),
                    };
                    outln!(
                        "  {:<20} {:<8} {:<16} {:<16} {}",
                        name,
                        if k.primary { "primary" } else { "" },
                        k.purpose,
                        k.fingerprint.as_deref().unwrap_or("-"),
                        k.created.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Wrap {
            output,
            pkcs11_module,
            token_label,
            key_label,
            pkcs11_create_kek,
            argon2_memory_kib,
            argon2_passes,
            keyring,
        } => {
            let path = keyring_path(keyring)?;
            fresh(&output)?;
            let ring = load_keyring(&path)?;
            if ring.kek().is_some() {
                return Err(Error::Usage(format!(
                    "{} is already wrapped; `keys unwrap` it first to wrap it differently",
                    path.display()
                )));
            }
            let shown = output.display().to_string();
            let kerr = |p: cloakline::error::Problem| Error::Keyring {
                path: shown.clone(),
                message: p.message,
            };
            let (spec, kek) = match pkcs11_module {
                Some(module) => {
                    let token = token_label.ok_or_else(|| {
                        Error::Usage("--pkcs11-module needs --token-label".into())
                    })?;
                    let module = module.display().to_string();
                    let kek = cloakline::keys::open_pkcs11_kek(
                        &module,
                        &token,
                        &key_label,
                        pkcs11_create_kek,
                    )
                    .map_err(kerr)?;
                    let spec = KekSpec::Pkcs11 {
                        module,
                        token_label: token,
                        key_label,
                    };
                    (spec, kek)
                }
                None => {
                    let spec = KekSpec::new_passphrase(argon2_memory_kib, argon2_passes);
                    let kek = spec
                        .open(&cloakline::keys::SecretSource::process())
                        .map_err(kerr)?;
                    (spec, kek)
                }
            };
            ring.write_wrapped(&output, &spec, kek.as_ref())?;
            errln!(
                "wrote {} keys to {shown}, wrapped under {}; keep the plain file only as long as you need it",
                ring.ids().count(),
                spec.describe()
            );
            Ok(())
        }
        KeysCommand::Unwrap { output, keyring } => {
            let path = keyring_path(keyring)?;
            fresh(&output)?;
            let ring = load_keyring(&path)?;
            if ring.kek().is_none() {
                return Err(Error::Usage(format!(
                    "{} is not wrapped; nothing to unwrap",
                    path.display()
                )));
            }
            ring.write_plain(&output)?;
            errln!(
                "warning: wrote the plain key material of {} keys to {} (owner-only); destroy it when done",
                ring.ids().count(),
                output.display()
            );
            Ok(())
        }
        KeysCommand::ExportPublic {
            id,
            output,
            keyring,
        } => {
            let path = keyring_path(keyring)?;
            let ring = load_keyring(&path)?;
            let key = ring.get(&id)?;
            let Some(public) = key.verifying_key() else {
                return Err(Error::Usage(format!(
                    "key {id} is a secret data key and has no public half; make a signing key with `cloakline keys generate --signing --id ID` and sign with it"
                )));
            };
            let pem = cloakline::keys::public_key_pem(&public)?;
            match output {
                None => print!("{pem}"),
                Some(out) => {
                    if out.exists() {
                        return Err(Error::Usage(format!(
                            "{} exists; choose another file or remove it first",
                            out.display()
                        )));
                    }
                    cloakline::io::write_atomically(&out, |f| {
                        std::io::Write::write_all(f, pem.as_bytes())
                    })?;
                    errln!(
                        "wrote the public key of {id} (fingerprint {}) to {}",
                        key.fingerprint(),
                        out.display()
                    );
                }
            }
            Ok(())
        }
    }
}
