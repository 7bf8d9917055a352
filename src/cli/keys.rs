//! `cloakline keys`: keyring management.

use super::*;
use cloakline::keys::KeyPurpose;

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
