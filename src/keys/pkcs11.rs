//! A KEK on a PKCS#11 token (an HSM, a cloud HSM, SoftHSM2): an AES-256 secret key that is
//! sensitive and not extractable, so wrapping and unwrapping run on the token (AES-GCM) and
//! the KEK never enters this process.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::wrap::{Kek, PIN_ENV, SecretSource};
use crate::error::Problem;

const NONCE_LEN: usize = 12;

struct TokenKek {
    // The session is not `Sync`; one operation at a time is all a keyring load needs.
    session: Mutex<Session>,
    key: ObjectHandle,
    ops: AtomicUsize,
}

/// Open the token labelled `token_label` through `module`, log in with the PIN, and find the
/// AES key labelled `key_label` (with `create`, generate it when missing). Errors name the
/// module, token and label, never the PIN.
pub(crate) fn open(
    module: &str,
    token_label: &str,
    key_label: &str,
    secret: &SecretSource<'_>,
    create: bool,
) -> Result<Box<dyn Kek>, Problem> {
    let path = std::path::Path::new(module);
    if !path.is_file() {
        return Err(Problem(format!(
            "PKCS#11 module {module} does not exist; install the token's library (SoftHSM2: \
             /usr/lib/softhsm/libsofthsm2.so) or fix `kek.module`"
        )));
    }
    let ctx = context(module)?;
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| Problem(format!("PKCS#11: cannot list slots: {e}")))?;
    let slot = slots
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .is_ok_and(|t| t.label().trim_end() == token_label)
        })
        .ok_or_else(|| {
            Problem(format!(
                "no PKCS#11 token labelled {token_label:?} is present (module {module}); \
                 plug it in, or initialise it (SoftHSM2: softhsm2-util --init-token --free --label {token_label})"
            ))
        })?;
    let session = if create {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(|e| {
        Problem(format!(
            "PKCS#11 token {token_label:?}: cannot open a session: {e}"
        ))
    })?;
    let pin = secret.get(
        PIN_ENV,
        &format!("user PIN of PKCS#11 token {token_label:?}"),
    )?;
    session
        .login(UserType::User, Some(&AuthPin::new(pin.as_str().into())))
        .map_err(|e| {
            Problem(format!(
                "PKCS#11 token {token_label:?}: login failed ({}); check the PIN in {PIN_ENV}",
                short(&e)
            ))
        })?;
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(key_label.as_bytes().to_vec()),
    ];
    let found = session.find_objects(&template).map_err(|e| {
        Problem(format!(
            "PKCS#11 token {token_label:?}: cannot search keys: {e}"
        ))
    })?;
    let key = match found.as_slice() {
        [k] => *k,
        [] if create => session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(key_label.as_bytes().to_vec()),
                ],
            )
            .map_err(|e| {
                Problem(format!(
                    "PKCS#11 token {token_label:?}: cannot generate the KEK {key_label:?}: {e}"
                ))
            })?,
        [] => {
            return Err(Problem(format!(
                "PKCS#11 token {token_label:?} has no AES key labelled {key_label:?} (the KEK is \
                 missing); create it with `cloakline keys wrap --pkcs11-create-kek …`"
            )));
        }
        _ => {
            return Err(Problem(format!(
                "PKCS#11 token {token_label:?} has several AES keys labelled {key_label:?}; \
                 labels must name one key"
            )));
        }
    };
    Ok(Box::new(TokenKek {
        session: Mutex::new(session),
        key,
        ops: AtomicUsize::new(0),
    }))
}

/// One initialised context per module for the whole process: PKCS#11 allows one
/// `C_Initialize` per library, and keyrings may be loaded many times.
fn context(module: &str) -> Result<Pkcs11, Problem> {
    static CONTEXTS: std::sync::OnceLock<Mutex<std::collections::HashMap<String, Pkcs11>>> =
        std::sync::OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| Problem("PKCS#11 contexts poisoned".to_string()))?;
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module)
        .map_err(|e| Problem(format!("cannot load the PKCS#11 module {module}: {e}")))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => {
            return Err(Problem(format!(
                "PKCS#11 module {module} failed to initialize: {e}"
            )));
        }
    }
    map.insert(module.to_string(), ctx.clone());
    Ok(ctx)
}

/// A PKCS#11 error as its return-value name (`PinIncorrect`, `KeyHandleInvalid`).
fn short(e: &cryptoki::error::Error) -> String {
    match e {
        cryptoki::error::Error::Pkcs11(rv, _) => format!("{rv:?}"),
        other => other.to_string(),
    }
}

impl TokenKek {
    fn run<T>(&self, f: impl FnOnce(&Session) -> cryptoki::error::Result<T>) -> Result<T, Problem> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        let session = self
            .session
            .lock()
            .map_err(|_| Problem("PKCS#11 session poisoned".to_string()))?;
        f(&session).map_err(|e| Problem(format!("the token refused the operation ({})", short(&e))))
    }
}

impl Kek for TokenKek {
    fn wrap(&self, aad: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, Problem> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        let mut iv = nonce;
        let sealed = self.run(|s| {
            let params = GcmParams::new(&mut iv, aad, 128.into())?;
            s.encrypt(&Mechanism::AesGcm(params), self.key, key)
        })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, Problem> {
        if wrapped.len() != NONCE_LEN + 32 + 16 {
            return Err("has the wrong length".into());
        }
        let mut iv: [u8; NONCE_LEN] = wrapped[..NONCE_LEN]
            .try_into()
            .map_err(|_| Problem("nonce".to_string()))?;
        let plain = Zeroizing::new(
            self.run(|s| {
                let params = GcmParams::new(&mut iv, aad, 128.into())?;
                s.decrypt(&Mechanism::AesGcm(params), self.key, &wrapped[NONCE_LEN..])
            })
            .map_err(|_| Problem("does not authenticate on the token".to_string()))?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err("does not unwrap to a 256-bit key".into());
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }

    fn operations(&self) -> usize {
        self.ops.load(Ordering::Relaxed)
    }
}

/// Open (or with `create`, create) a token KEK for `keys wrap`.
pub fn open_for_wrapping(
    module: &str,
    token_label: &str,
    key_label: &str,
    create: bool,
) -> Result<Box<dyn Kek>, Problem> {
    open(
        module,
        token_label,
        key_label,
        &SecretSource::process(),
        create,
    )
}
