//! Verify apt repository signatures (InRelease, or Release + Release.gpg) with
//! rpgp, and produce such signatures (for tests / a local repo) without gpg.
//!
//! Acceptance policy follows apt's `gpgv` method: a file is accepted when at
//! least one signature is good and was made by a currently valid (unexpired,
//! unrevoked, signing-capable) key of the keyring, and no signature that names
//! a key of the keyring is bad. Signatures by keys that are not in the keyring,
//! or by expired keys, are ignored when another signature is good.
//!
//! InRelease files are split the way apt's `SplitClearSignedFile` splits them
//! (apt hands gpgv the split-out text as detached data), so the text returned
//! is byte-for-byte what apt parses, and exactly what the signature covers.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use pgp::armor::Dearmor;
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Packet, PacketParser, Signature, SignatureType, SubpacketData};
use pgp::types::{Duration, Fingerprint, KeyDetails, KeyId, Tag, Timestamp};
#[cfg(any(test, feature = "test-keys"))]
use pgp::{
    composed::{
        ArmorOptions, CleartextSignedMessage, EncryptionCaps, KeyType, SecretKeyParamsBuilder,
        SignedSecretKey, SubkeyParamsBuilder,
    },
    packet::Subpacket,
    ser::Serialize,
    types::Password,
};

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum SigError {
    /// Reading a file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The keyring could not be parsed or holds no key.
    #[error("invalid keyring: {0}")]
    Keyring(String),
    /// Not a signed message / no signature / broken armor or packets.
    #[error("not a valid signed file: {0}")]
    Malformed(String),
    /// No signature was made by a key of the keyring. `issuers`: issuer
    /// fingerprints (or 16-hex key ids when a signature has no fingerprint
    /// subpacket), upper-case hex.
    #[error("signed by unknown key(s): {}", issuers.join(", "))]
    UnknownKey { issuers: Vec<String> },
    /// A signature names a key of the keyring but does not verify (tampered data).
    #[error("BAD signature from key {fingerprint}")]
    BadSignature { fingerprint: String },
    /// The signature verifies, but the signing key (or its primary) has expired.
    #[error("key {fingerprint} expired at unix time {}", unix_secs(*expired_at))]
    ExpiredKey {
        fingerprint: String,
        expired_at: SystemTime,
    },
    /// The signature verifies but must not be trusted: revoked key, key without
    /// signing capability or binding, expired signature, weak digest.
    #[error("signature by key {fingerprint} rejected: {reason}")]
    Rejected { fingerprint: String, reason: String },
    /// Key generation or signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

#[cfg(any(test, feature = "test-keys"))]
fn sign_err(e: impl fmt::Display) -> SigError {
    SigError::Sign(e.to_string())
}

fn malformed(e: impl fmt::Display) -> SigError {
    SigError::Malformed(e.to_string())
}

// ---------------------------------------------------------------------------
// Keyring
// ---------------------------------------------------------------------------

/// A set of OpenPGP certificates (primary keys with their subkeys).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    certs: Vec<SignedPublicKey>,
    /// Time-independent validity of each cert, computed on first use
    /// (self-signature checks cost ~0.7 ms per RSA-4096 signature).
    validity: Vec<OnceLock<CertValidity>>,
}

/// One key of a keyring, primary or subkey, as a flat list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub fingerprint: String,
    pub key_id: String,
    pub primary_fingerprint: String,
    pub is_subkey: bool,
    pub created: SystemTime,
    pub user_id: Option<String>,
}

impl Keyring {
    /// Parse a keyring: binary (a concatenation of transferable public keys, as
    /// in `/usr/share/keyrings/*.gpg`, GnuPG trust packets allowed) or
    /// ASCII-armored (one or several `PUBLIC KEY BLOCK`s, as in `*.asc`).
    pub fn from_bytes(data: &[u8]) -> Result<Self, SigError> {
        let first = data
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace())
            .ok_or_else(|| SigError::Keyring("empty keyring".into()))?;
        let mut certs = Vec::new();
        let mut errors = Vec::new();
        if first & 0x80 != 0 {
            collect_certs(BufReader::new(data), &mut certs, &mut errors);
        } else {
            let text = std::str::from_utf8(data)
                .map_err(|_| SigError::Keyring("armored keyring is not UTF-8".into()))?;
            let (blocks, _) = armor_blocks(text, "PUBLIC KEY BLOCK");
            if blocks.is_empty() {
                return Err(SigError::Keyring("no PGP PUBLIC KEY BLOCK found".into()));
            }
            for block in blocks {
                collect_certs(
                    BufReader::new(Dearmor::new(block.as_bytes())),
                    &mut certs,
                    &mut errors,
                );
            }
        }
        if certs.is_empty() {
            let why = if errors.is_empty() {
                "no key packets".into()
            } else {
                errors.join("; ")
            };
            return Err(SigError::Keyring(format!(
                "no usable public key found ({why})"
            )));
        }
        let validity = certs.iter().map(|_| OnceLock::new()).collect();
        Ok(Keyring { certs, validity })
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SigError> {
        Self::from_bytes(&std::fs::read(path)?)
    }

    /// Load and merge several keyring files (like apt's trusted.gpg.d, or a
    /// `Signed-By:` list).
    pub fn from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self, SigError> {
        let mut ring = Keyring::default();
        for p in paths {
            ring.merge(Self::from_file(p)?);
        }
        Ok(ring)
    }

    pub fn merge(&mut self, other: Keyring) {
        self.certs.extend(other.certs);
        self.validity.extend(other.validity);
    }

    pub fn certificates(&self) -> &[SignedPublicKey] {
        &self.certs
    }

    /// Flat list of all keys (primary keys and subkeys).
    pub fn keys(&self) -> Vec<KeyInfo> {
        let mut out = Vec::new();
        for cert in &self.certs {
            let primary_fp = fp_hex(&cert.primary_key.fingerprint());
            let uid = first_user_id(cert);
            out.push(KeyInfo {
                fingerprint: primary_fp.clone(),
                key_id: keyid_hex(&cert.primary_key.legacy_key_id()),
                primary_fingerprint: primary_fp.clone(),
                is_subkey: false,
                created: ts(cert.primary_key.created_at()),
                user_id: uid.clone(),
            });
            for sub in &cert.public_subkeys {
                out.push(KeyInfo {
                    fingerprint: fp_hex(&sub.key.fingerprint()),
                    key_id: keyid_hex(&sub.key.legacy_key_id()),
                    primary_fingerprint: primary_fp.clone(),
                    is_subkey: true,
                    created: ts(sub.key.created_at()),
                    user_id: uid.clone(),
                });
            }
        }
        out
    }

    fn validity(&self, idx: usize) -> Option<&CertValidity> {
        let cert = self.certs.get(idx)?;
        Some(
            self.validity
                .get(idx)?
                .get_or_init(|| CertValidity::compute(cert)),
        )
    }
}

/// Parse transferable public keys from a binary packet stream.
///
/// rpgp's `SignedPublicKey::from_bytes_many` does not skip GnuPG *trust*
/// packets (tag 12, present in keyrings written by `gpg --keyring`, e.g.
/// ubuntu-archive-keyring.gpg): its key parser then silently drops every user
/// id and subkey after them. So run the packet parser ourselves, drop
/// trust/marker/padding packets and ignorable errors, and compose keys from
/// the filtered stream.
fn collect_certs<R: BufRead>(
    reader: R,
    certs: &mut Vec<SignedPublicKey>,
    errors: &mut Vec<String>,
) {
    let packets = PacketParser::new(reader)
        .filter_map(keyring_packet_filter)
        .peekable();
    // A broken key must not hide the others, but stop if the parser keeps
    // yielding errors without progress.
    let mut consecutive_errors = 0;
    for item in SignedPublicKey::from_packets(packets) {
        match item {
            Ok(cert) => {
                consecutive_errors = 0;
                certs.push(cert);
            }
            Err(e) => {
                errors.push(e.to_string());
                consecutive_errors += 1;
                if consecutive_errors > 64 {
                    break;
                }
            }
        }
    }
}

fn keyring_packet_filter(p: pgp::errors::Result<Packet>) -> Option<pgp::errors::Result<Packet>> {
    use pgp::errors::Error;
    match p {
        Ok(Packet::Trust(_) | Packet::Marker(_) | Packet::Padding(_)) => None,
        // same leniency as rpgp's own filter: unknown versions/algorithms are skipped
        Err(Error::Unsupported { .. } | Error::PacketIncomplete { .. }) => None,
        Err(Error::InvalidPacketContent { ref source })
            if matches!(
                **source,
                Error::Unsupported { .. } | Error::EllipticCurve { .. }
            ) =>
        {
            None
        }
        other => Some(other),
    }
}

/// Slice out every `-----BEGIN PGP <kind>-----` ... `-----END PGP <kind>-----`
/// block. The flag tells whether anything but whitespace lies outside them.
fn armor_blocks<'a>(text: &'a str, kind: &str) -> (Vec<&'a str>, bool) {
    let begin = format!("-----BEGIN PGP {kind}-----");
    let end = format!("-----END PGP {kind}-----");
    let mut out = Vec::new();
    let mut outside = false;
    let mut rest = text;
    while let Some(b) = rest.find(&begin) {
        outside |= !rest[..b].trim().is_empty();
        let after = &rest[b..];
        match after.find(&end) {
            Some(e) => {
                let stop = e + end.len();
                out.push(&after[..stop]);
                rest = &after[stop..];
            }
            None => {
                // unterminated: hand it to the parser, which reports the error
                out.push(after);
                rest = "";
            }
        }
    }
    outside |= !rest.trim().is_empty();
    (out, outside)
}

// ---------------------------------------------------------------------------
// Key validity (self-signatures, bindings, revocations, expiry)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct KeyState {
    expires: Option<SystemTime>,
    can_sign: bool,
}

/// Validity facts that do not depend on the current time.
/// `Err(reason)`: the key is unusable whatever the time.
#[derive(Debug, Clone)]
struct CertValidity {
    primary: Result<KeyState, String>,
    subkeys: Vec<Result<KeyState, String>>,
}

impl CertValidity {
    fn compute(cert: &SignedPublicKey) -> Self {
        let primary = primary_state(cert);
        let subkeys = cert
            .public_subkeys
            .iter()
            .map(|s| subkey_state(cert, s))
            .collect();
        CertValidity { primary, subkeys }
    }
}

fn primary_state(cert: &SignedPublicKey) -> Result<KeyState, String> {
    let primary = &cert.primary_key;
    if cert
        .details
        .revocation_signatures
        .iter()
        .any(|r| r.verify_key(primary).is_ok())
    {
        return Err("key is revoked".into());
    }
    // Newest valid self-signature (user-id certification or direct-key
    // signature) decides expiry and flags. Try newest first, so that usually
    // a single signature is verified.
    let mut candidates: Vec<(&Signature, Option<&pgp::packet::UserId>)> = Vec::new();
    for user in &cert.details.users {
        for s in &user.signatures {
            if s.is_certification()
                && s.typ() != Some(SignatureType::CertRevocation)
                && issued_by(s, &primary.fingerprint(), &primary.legacy_key_id())
            {
                candidates.push((s, Some(&user.id)));
            }
        }
    }
    for s in &cert.details.direct_signatures {
        if s.typ() == Some(SignatureType::Key)
            && issued_by(s, &primary.fingerprint(), &primary.legacy_key_id())
        {
            candidates.push((s, None));
        }
    }
    candidates.sort_by_key(|(s, _)| std::cmp::Reverse(sig_time(s)));
    let selfsig = candidates
        .into_iter()
        .find(|(s, uid)| match uid {
            Some(uid) => s.verify_certification(primary, Tag::UserId, *uid).is_ok(),
            None => s.verify_key(primary).is_ok(),
        })
        .map(|(s, _)| s)
        .ok_or("primary key has no valid self-signature")?;
    Ok(KeyState {
        expires: expiry(primary.created_at(), selfsig.key_expiration_time()),
        // without a key-flags subpacket the algorithm decides (all ours can sign)
        can_sign: !has_key_flags(selfsig) || selfsig.key_flags().sign(),
    })
}

fn subkey_state(
    cert: &SignedPublicKey,
    sub: &pgp::composed::SignedPublicSubKey,
) -> Result<KeyState, String> {
    let primary = &cert.primary_key;
    let mut sigs: Vec<&Signature> = sub.signatures.iter().collect();
    sigs.sort_by_key(|s| std::cmp::Reverse(sig_time(s)));
    let revoked = sigs.iter().any(|s| {
        s.typ() == Some(SignatureType::SubkeyRevocation)
            && s.verify_subkey_binding(primary, &sub.key).is_ok()
    });
    if revoked {
        return Err("subkey is revoked".into());
    }
    let binding = sigs
        .into_iter()
        .find(|s| {
            s.typ() == Some(SignatureType::SubkeyBinding)
                && s.verify_subkey_binding(primary, &sub.key).is_ok()
        })
        .ok_or("subkey has no valid binding signature")?;
    let can_sign = binding.key_flags().sign();
    if can_sign {
        // a signing subkey must cross-certify its primary (gpg requires it too)
        let backsig_ok = binding
            .embedded_signature()
            .is_some_and(|b| b.verify_primary_key_binding(&sub.key, primary).is_ok());
        if !backsig_ok {
            return Err("signing subkey lacks a valid back-signature".into());
        }
    }
    Ok(KeyState {
        expires: expiry(sub.key.created_at(), binding.key_expiration_time()),
        can_sign,
    })
}

/// Is the component usable for a data signature at `now`? Returns its expiry.
fn key_usable(
    keyring: &Keyring,
    cert_idx: usize,
    sub_idx: Option<usize>,
    now: SystemTime,
) -> Result<Option<SystemTime>, SigError> {
    let (Some(cert), Some(v)) = (keyring.certs.get(cert_idx), keyring.validity(cert_idx)) else {
        return Err(SigError::Keyring(
            "internal: certificate index out of range".into(),
        ));
    };
    let pfp = fp_hex(&cert.primary_key.fingerprint());
    let reject = |fingerprint: String, reason: String| SigError::Rejected {
        fingerprint,
        reason,
    };

    let primary = v.primary.clone().map_err(|r| reject(pfp.clone(), r))?;
    if let Some(at) = primary.expires.filter(|at| *at <= now) {
        return Err(SigError::ExpiredKey {
            fingerprint: pfp,
            expired_at: at,
        });
    }
    let (state, fp) = match sub_idx {
        None => (primary, pfp),
        Some(i) => {
            let sfp = cert
                .public_subkeys
                .get(i)
                .map(|s| fp_hex(&s.key.fingerprint()))
                .unwrap_or_default();
            let st = v
                .subkeys
                .get(i)
                .cloned()
                .unwrap_or_else(|| Err("internal: subkey index".into()))
                .map_err(|r| reject(sfp.clone(), r))?;
            (st, sfp)
        }
    };
    if !state.can_sign {
        return Err(reject(fp, "key is not signing-capable".into()));
    }
    if let Some(at) = state.expires.filter(|at| *at <= now) {
        return Err(SigError::ExpiredKey {
            fingerprint: fp,
            expired_at: at,
        });
    }
    Ok(match (primary.expires, state.expires) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// The key that made a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Fingerprint of the key that signed (a subkey, or the primary key).
    pub fingerprint: String,
    /// 16-hex-digit long key id of that key.
    pub key_id: String,
    /// Fingerprint of the certificate's primary key (what `Signed-By:` names).
    pub primary_fingerprint: String,
    pub user_id: Option<String>,
    /// Signature creation time (hashed subpacket).
    pub signature_created: Option<SystemTime>,
    /// When the signing key expires (earliest of primary and subkey), if ever.
    pub key_expires: Option<SystemTime>,
    pub hash: String,
}

#[derive(Debug)]
pub struct Verified {
    /// Cleartext messages: the signed text exactly as apt's
    /// `SplitClearSignedFile` writes it for the parser: dash-escaping undone,
    /// trailing CR/spaces/tabs stripped from each line, lines joined by "\n",
    /// no newline after the last line. Empty for detached signatures.
    pub signed_text: Vec<u8>,
    /// First good signature.
    pub signer: Signer,
    /// All good signatures.
    pub good: Vec<Signer>,
    /// Signatures that did not count but were not fatal because another one
    /// was good (unknown key, expired key, ...), as apt does.
    pub ignored: Vec<SigError>,
}

/// Verify an InRelease-style cleartext-signed message.
pub fn verify_cleartext(keyring: &Keyring, data: &[u8]) -> Result<Verified, SigError> {
    verify_cleartext_at(keyring, data, SystemTime::now())
}

pub fn verify_cleartext_at(
    keyring: &Keyring,
    data: &[u8],
    now: SystemTime,
) -> Result<Verified, SigError> {
    let split = split_clearsigned(data)?;
    let sigs = parse_signatures(&split.signatures)?;
    // What a cleartext signature covers: the lines joined with CRLF, no final
    // line break (RFC 9580 7.1). Hashing a text signature normalises to CRLF anyway.
    let hashed = split.lines.join(&b"\r\n"[..]);
    let mut v = verify_signatures(keyring, &sigs, &hashed, now)?;
    v.signed_text = split.lines.join(&b"\n"[..]);
    Ok(v)
}

/// Verify a detached signature (Release.gpg, armored or binary) over `data`.
pub fn verify_detached(keyring: &Keyring, data: &[u8], sig: &[u8]) -> Result<Verified, SigError> {
    verify_detached_at(keyring, data, sig, SystemTime::now())
}

pub fn verify_detached_at(
    keyring: &Keyring,
    data: &[u8],
    sig: &[u8],
    now: SystemTime,
) -> Result<Verified, SigError> {
    let sigs = parse_signatures(sig)?;
    verify_signatures(keyring, &sigs, data, now)
}

struct ClearSigned<'a> {
    lines: Vec<&'a [u8]>,
    /// The armored signature block(s), re-joined with "\n".
    signatures: Vec<u8>,
}

/// Split an InRelease file like apt's `SplitClearSignedFile` (apt-pkg/contrib/gpgv.cc).
/// Linear time; rpgp's `CleartextSignedMessage::from_string` is quadratic in
/// the body size (~17 ms for Debian's 150 KB InRelease) and stricter on headers.
fn split_clearsigned(data: &[u8]) -> Result<ClearSigned<'_>, SigError> {
    const BEGIN_MSG: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
    const BEGIN_SIG: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
    const END_SIG: &[u8] = b"-----END PGP SIGNATURE-----";

    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut lines = body.split(|&b| b == b'\n').map(|l| {
        // like apt: strip line-end characters, then trailing blanks
        let l = trim_end(l, b"\r\n");
        trim_end(l, b" \t")
    });

    if data.is_empty() || lines.next() != Some(BEGIN_MSG) {
        return Err(malformed(
            "does not start with -----BEGIN PGP SIGNED MESSAGE-----",
        ));
    }
    // armor headers ("Hash: ...") up to the first empty line
    loop {
        match lines.next() {
            None => return Err(malformed("no empty line after the armor headers")),
            Some([]) => break,
            Some(l) if l.starts_with(b"-") => {
                return Err(malformed("dash line in the armor headers"))
            }
            Some(_) => {}
        }
    }
    // the message
    let mut text = Vec::new();
    loop {
        match lines.next() {
            None => {
                return Err(malformed(
                    "no -----BEGIN PGP SIGNATURE----- after the message",
                ))
            }
            Some(l) if l == BEGIN_SIG => break,
            Some(l) if l.starts_with(b"- ") => text.push(&l[2..]),
            Some(l) if l.starts_with(b"-") => {
                return Err(malformed(format!(
                    "unescaped line starting with a dash: {:?}",
                    String::from_utf8_lossy(l)
                )))
            }
            Some(l) => text.push(l),
        }
    }
    // one or more signature blocks and nothing else
    let mut signatures = BEGIN_SIG.to_vec();
    let mut open = true;
    for l in lines {
        if open {
            if l == END_SIG {
                open = false;
            } else if l.starts_with(b"-") {
                return Err(malformed("unexpected dash line inside the signature block"));
            }
        } else if l == BEGIN_SIG {
            open = true;
        } else {
            return Err(malformed("unsigned text after the signature"));
        }
        signatures.push(b'\n');
        signatures.extend_from_slice(l);
    }
    if open {
        return Err(malformed("signature block is not closed"));
    }
    signatures.push(b'\n');
    Ok(ClearSigned {
        lines: text,
        signatures,
    })
}

fn trim_end<'a>(mut s: &'a [u8], chars: &[u8]) -> &'a [u8] {
    while let [rest @ .., last] = s {
        if !chars.contains(last) {
            break;
        }
        s = rest;
    }
    s
}

/// Parse signature packets: binary, or one or more armored SIGNATURE blocks
/// with nothing else around them (apt refuses extra lines in Release.gpg).
fn parse_signatures(sig: &[u8]) -> Result<Vec<Signature>, SigError> {
    let first = sig
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
        .ok_or_else(|| malformed("empty signature"))?;
    let mut out = Vec::new();
    if first & 0x80 != 0 {
        for s in DetachedSignature::from_bytes_many(BufReader::new(sig)).map_err(malformed)? {
            out.push(s.map_err(malformed)?.signature);
        }
    } else {
        let text = std::str::from_utf8(sig).map_err(|_| malformed("signature is not UTF-8"))?;
        let (blocks, other_content) = armor_blocks(text, "SIGNATURE");
        if blocks.is_empty() {
            return Err(malformed("no PGP SIGNATURE block found"));
        }
        if other_content {
            return Err(malformed("text outside the signature block(s)"));
        }
        for block in blocks {
            let (iter, _) =
                DetachedSignature::from_armor_many(block.as_bytes()).map_err(malformed)?;
            for s in iter {
                out.push(s.map_err(malformed)?.signature);
            }
        }
    }
    if out.is_empty() {
        return Err(malformed("no signature packets"));
    }
    Ok(out)
}

enum Outcome {
    Good(Signer),
    Bad(String),
    Unknown(Vec<String>),
    Unusable(SigError),
}

fn verify_signatures(
    keyring: &Keyring,
    sigs: &[Signature],
    data: &[u8],
    now: SystemTime,
) -> Result<Verified, SigError> {
    let mut good = Vec::new();
    let mut ignored = Vec::new();
    let mut bad = None;
    for sig in sigs {
        match check_one(keyring, sig, data, now) {
            Outcome::Good(s) => good.push(s),
            Outcome::Bad(fp) => {
                bad.get_or_insert(fp);
            }
            Outcome::Unknown(issuers) => ignored.push(SigError::UnknownKey { issuers }),
            Outcome::Unusable(e) => ignored.push(e),
        }
    }
    if let Some(fingerprint) = bad {
        // like apt: a bad signature by a known key is fatal even if others are good
        return Err(SigError::BadSignature { fingerprint });
    }
    if let Some(signer) = good.first().cloned() {
        return Ok(Verified {
            signed_text: Vec::new(),
            signer,
            good,
            ignored,
        });
    }
    // No good signature: report the most specific problem.
    if let Some(pos) = ignored
        .iter()
        .position(|e| !matches!(e, SigError::UnknownKey { .. }))
    {
        return Err(ignored.swap_remove(pos));
    }
    let issuers = ignored
        .into_iter()
        .flat_map(|e| match e {
            SigError::UnknownKey { issuers } => issuers,
            _ => Vec::new(),
        })
        .collect::<Vec<_>>();
    if issuers.is_empty() {
        return Err(malformed("no signatures"));
    }
    Err(SigError::UnknownKey { issuers })
}

fn check_one(keyring: &Keyring, sig: &Signature, data: &[u8], now: SystemTime) -> Outcome {
    let issuer_fps = sig.issuer_fingerprint();
    let issuer_ids = sig.issuer_key_id();
    let no_issuer = issuer_fps.is_empty() && issuer_ids.is_empty();
    // Prefer the issuer fingerprint; fall back to the 64-bit key id only when
    // the signature has no fingerprint subpacket (old gpg), or try every key
    // when it names no issuer at all.
    let matches = |fp: &Fingerprint, id: &KeyId| {
        if issuer_fps.is_empty() {
            no_issuer || issuer_ids.contains(&id)
        } else {
            issuer_fps.contains(&fp)
        }
    };

    // Try every primary key / subkey that the issuer subpackets name.
    let mut named_known_key = false;
    for (ci, cert) in keyring.certs.iter().enumerate() {
        let comps = std::iter::once((None, &cert.primary_key as &dyn KeyDetails)).chain(
            cert.public_subkeys
                .iter()
                .enumerate()
                .map(|(i, s)| (Some(i), &s.key as &dyn KeyDetails)),
        );
        for (si, key) in comps {
            let (fp, id) = (key.fingerprint(), key.legacy_key_id());
            if !matches(&fp, &id) {
                continue;
            }
            named_known_key = true;
            let ok = match si {
                None => sig.verify(&cert.primary_key, data).is_ok(),
                Some(i) => sig.verify(&cert.public_subkeys[i].key, data).is_ok(),
            };
            if ok {
                return accept(keyring, sig, ci, si, fp_hex(&fp), keyid_hex(&id), now);
            }
        }
    }
    let issuers = || -> Vec<String> {
        let fps: Vec<String> = issuer_fps.iter().map(|f| fp_hex(f)).collect();
        if !fps.is_empty() {
            return fps;
        }
        let ids: Vec<String> = issuer_ids.iter().map(|k| keyid_hex(k)).collect();
        if ids.is_empty() {
            vec!["(no issuer subpacket)".into()]
        } else {
            ids
        }
    };
    if named_known_key && !no_issuer {
        Outcome::Bad(issuers().into_iter().next().unwrap_or_default())
    } else {
        Outcome::Unknown(issuers())
    }
}

/// The signature verified cryptographically with this key; decide whether it counts.
fn accept(
    keyring: &Keyring,
    sig: &Signature,
    cert_idx: usize,
    sub_idx: Option<usize>,
    fingerprint: String,
    key_id: String,
    now: SystemTime,
) -> Outcome {
    let reject = |reason: String| {
        Outcome::Unusable(SigError::Rejected {
            fingerprint: fingerprint.clone(),
            reason,
        })
    };
    let hash = sig.hash_alg().unwrap_or(HashAlgorithm::None);
    // apt treats MD5, SHA1 and RIPEMD160 signatures as untrusted
    if matches!(
        hash,
        HashAlgorithm::None | HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160
    ) {
        return reject(format!("weak digest algorithm {hash}"));
    }
    if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
        return reject(format!("not a document signature ({:?})", sig.typ()));
    }
    let created = sig.created().map(ts);
    let sig_expires = sig.signature_expiration_time().filter(|d| d.as_secs() != 0);
    if created
        .zip(sig_expires)
        .is_some_and(|(c, d)| c + secs(d) <= now)
    {
        return reject("signature expired".into());
    }
    // Note: like apt (gpgv --ignore-time-conflict) a creation time in the
    // future, or before the key's creation, is not an error.
    let key_expires = match key_usable(keyring, cert_idx, sub_idx, now) {
        Ok(exp) => exp,
        Err(e) => return Outcome::Unusable(e),
    };
    let Some(cert) = keyring.certs.get(cert_idx) else {
        return reject("internal: certificate index".into());
    };
    Outcome::Good(Signer {
        fingerprint: fingerprint.clone(),
        key_id,
        primary_fingerprint: fp_hex(&cert.primary_key.fingerprint()),
        user_id: first_user_id(cert),
        signature_created: created,
        key_expires,
        hash: hash.to_string(),
    })
}

fn issued_by(s: &Signature, fp: &Fingerprint, id: &KeyId) -> bool {
    let fps = s.issuer_fingerprint();
    let ids = s.issuer_key_id();
    (fps.is_empty() && ids.is_empty()) || fps.contains(&fp) || ids.contains(&id)
}

fn has_key_flags(s: &Signature) -> bool {
    s.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

fn sig_time(s: &Signature) -> u32 {
    s.created().map_or(0, |t| t.as_secs())
}

fn expiry(created: Timestamp, validity: Option<Duration>) -> Option<SystemTime> {
    match validity {
        Some(d) if d.as_secs() != 0 => Some(ts(created) + secs(d)),
        _ => None,
    }
}

fn first_user_id(cert: &SignedPublicKey) -> Option<String> {
    cert.details
        .users
        .first()
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
}

fn fp_hex(fp: &Fingerprint) -> String {
    format!("{fp:X}")
}

fn keyid_hex(id: &KeyId) -> String {
    id.to_string().to_uppercase()
}

fn ts(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + StdDuration::from_secs(u64::from(t.as_secs()))
}

fn secs(d: Duration) -> StdDuration {
    StdDuration::from_secs(u64::from(d.as_secs()))
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------
// Key generation and signing: for tests only (feature `test-keys`, which opaas-testkit turns
// on), so the service and the CLI carry no key generator and no `rand`
// ---------------------------------------------------------------------------

/// A generated key: certify-only Ed25519 primary plus an Ed25519 signing subkey.
#[cfg(any(test, feature = "test-keys"))]
pub struct TestKey {
    pub secret: SignedSecretKey,
    /// The public certificate; kept separately because `generate_key_with`
    /// re-issues its self-signatures to add an expiry.
    pub public: SignedPublicKey,
}

/// Generate a v4 key that gpgv 2.2 understands. `KeyType::Ed25519Legacy`
/// (EdDSA, algo 22) -- gpgv 2.2 rejects RFC 9580 `KeyType::Ed25519` (algo 27)
/// with "Invalid public key algorithm".
#[cfg(any(test, feature = "test-keys"))]
pub fn generate_key(user_id: &str) -> Result<TestKey, SigError> {
    generate_key_with(user_id, SystemTime::now(), None)
}

/// Like `generate_key`, with an explicit creation time and an optional validity
/// period (applied to the primary key and to the signing subkey).
#[cfg(any(test, feature = "test-keys"))]
pub fn generate_key_with(
    user_id: &str,
    created: SystemTime,
    valid_for: Option<StdDuration>,
) -> Result<TestKey, SigError> {
    let mut rng = rand::thread_rng();
    let created_at = Timestamp::try_from(created).map_err(sign_err)?;

    let signing_subkey = SubkeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .created_at(created_at)
        .build()
        .map_err(sign_err)?;
    let secret = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(false)
        .can_encrypt(EncryptionCaps::None)
        .created_at(created_at)
        .primary_user_id(user_id.into())
        .preferred_hash_algorithms(
            [HashAlgorithm::Sha512, HashAlgorithm::Sha256]
                .into_iter()
                .collect(),
        )
        .subkeys(vec![signing_subkey])
        .build()
        .map_err(sign_err)?
        .generate(&mut rng)
        .map_err(sign_err)?;
    let mut public = secret.to_public_key();

    // The builder has no expiry option: re-issue the self-signatures with a
    // Key Expiration Time subpacket added.
    if let Some(valid_for) = valid_for {
        let expiration = || -> Result<Subpacket, SigError> {
            let d = Duration::try_from(valid_for).map_err(sign_err)?;
            Subpacket::regular(SubpacketData::KeyExpirationTime(d)).map_err(sign_err)
        };
        let pw = Password::empty();
        let primary_pub = secret.primary_key.public_key().clone();
        for user in &mut public.details.users {
            let mut resigned = Vec::new();
            for s in &user.signatures {
                let Some(cfg) = s.config() else { continue };
                let mut cfg = cfg.clone();
                cfg.hashed_subpackets.push(expiration()?);
                let sig = cfg
                    .sign_certification(
                        &secret.primary_key,
                        &primary_pub,
                        &pw,
                        Tag::UserId,
                        &user.id,
                    )
                    .map_err(sign_err)?;
                resigned.push(sig);
            }
            user.signatures = resigned;
        }
        for sub in &mut public.public_subkeys {
            let mut resigned = Vec::new();
            for s in &sub.signatures {
                let Some(cfg) = s.config() else { continue };
                let mut cfg = cfg.clone(); // keeps the embedded back-signature
                cfg.hashed_subpackets.push(expiration()?);
                let sig = cfg
                    .sign_subkey_binding(&secret.primary_key, &primary_pub, &pw, &sub.key)
                    .map_err(sign_err)?;
                resigned.push(sig);
            }
            sub.signatures = resigned;
        }
    }
    Ok(TestKey { secret, public })
}

#[cfg(any(test, feature = "test-keys"))]
impl TestKey {
    /// Public key, binary (for /usr/share/keyrings/foo.gpg or `gpgv --keyring`).
    pub fn public_binary(&self) -> Result<Vec<u8>, SigError> {
        self.public.to_bytes().map_err(sign_err)
    }

    /// Public key, ASCII-armored (foo.asc).
    pub fn public_armored(&self) -> Result<String, SigError> {
        self.public
            .to_armored_string(ArmorOptions::default())
            .map_err(sign_err)
    }

    pub fn signing_fingerprint(&self) -> String {
        match self.secret.secret_subkeys.first() {
            Some(s) => fp_hex(&s.key.fingerprint()),
            None => fp_hex(&self.secret.primary_key.fingerprint()),
        }
    }

    pub fn primary_fingerprint(&self) -> String {
        fp_hex(&self.secret.primary_key.fingerprint())
    }

    /// Produce an InRelease file for `text`.
    ///
    /// Trailing blanks are stripped from each line first: rpgp hashes the text
    /// as given but verifiers (rpgp included) hash it with trailing blanks
    /// removed, so a line ending in a space would give an unverifiable
    /// signature. The final newline becomes the separator before the armor, as
    /// with `gpg --clearsign`, so apt sees the text without a final newline.
    pub fn sign_cleartext(&self, text: &str) -> Result<String, SigError> {
        let mut normalized = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let (content, nl) = match line.strip_suffix('\n') {
                Some(c) => (c.strip_suffix('\r').unwrap_or(c), "\n"),
                None => (line, ""),
            };
            normalized.push_str(content.trim_end_matches([' ', '\t']));
            normalized.push_str(nl);
        }
        let body = normalized.strip_suffix('\n').unwrap_or(&normalized);
        let rng = rand::thread_rng();
        let pw = Password::empty();
        let msg = match self.secret.secret_subkeys.first() {
            Some(sub) => CleartextSignedMessage::sign(rng, body, &sub.key, &pw),
            None => CleartextSignedMessage::sign(rng, body, &self.secret.primary_key, &pw),
        }
        .map_err(sign_err)?;
        msg.to_armored_string(ArmorOptions::default())
            .map_err(sign_err)
    }

    /// Produce an armored detached signature (Release.gpg) over `data`.
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, SigError> {
        let rng = rand::thread_rng();
        let pw = Password::empty();
        let hash = HashAlgorithm::Sha512;
        let sig = match self.secret.secret_subkeys.first() {
            Some(sub) => DetachedSignature::sign_binary_data(rng, &sub.key, &pw, hash, data),
            None => {
                DetachedSignature::sign_binary_data(rng, &self.secret.primary_key, &pw, hash, data)
            }
        }
        .map_err(sign_err)?;
        sig.to_armored_string(ArmorOptions::default())
            .map_err(sign_err)
    }
}
