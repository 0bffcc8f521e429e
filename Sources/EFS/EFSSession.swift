// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import Synchronization
import SystemPackage

/// What a passphrase prompt is for.
public struct PassphraseRequest: Sendable {
    public var thumbprint: Thumbprint
    public var displayName: String
    /// 1 for the first try, 2 after one wrong passphrase, …
    public var attempt: Int

    public init(thumbprint: Thumbprint, displayName: String, attempt: Int) {
        self.thumbprint = thumbprint
        self.displayName = displayName
        self.attempt = attempt
    }
}

/// Supplies a passphrase for an encrypted private key: from a prompt, a file or standard input. Never from argv.
public typealias PassphraseProvider = @Sendable (PassphraseRequest) throws -> Passphrase

/// The calling user's identity for EFS operations: their key store and a way to unlock its private keys.
///
/// Windows' EFS functions act for the logged-on user; in swift-efs a session plays that part. Unlocked private keys
/// are cached in memory for the life of the session only and never written anywhere.
///
/// ```swift
/// let session = EFSSession(keyStore: KeyStore(root: KeyStore.defaultLocation()), passphrase: { _ in myPassphrase })
/// try session.encryptFile(at: "/data/vault/report.pdf")
/// ```
public final class EFSSession: Sendable {
    public let keyStore: KeyStore
    let passphraseProvider: PassphraseProvider?
    let maximumAttempts: Int
    private let unlocked = Mutex<[Thumbprint: UnlockedKey]>([:])
    /// Certificates read from the key store, by thumbprint (a certificate's bytes are fixed by its thumbprint).
    private let certificates = Mutex<[Thumbprint: EFSCertificate]>([:])
    /// The current-key pointer as last read, with the identity of the file it was read from.
    private let lastCurrent = Mutex<(stamp: KeyStore.FileStamp, thumbprint: Thumbprint)?>(nil)
    /// Wraps the FEKs of new files (shared encapsulations for EC certificates).
    let wrapping = KeyWrapping()

    /// Zeroes the key material kept for wrapping new files' keys (shared HPKE encapsulations) once it has aged out
    /// (60 s) or been used up (1,024 files). Long-lived users of a session (the mount) call it periodically.
    public func releaseExpiredWrappingKeys() { wrapping.releaseExpired() }

    /// - Parameters:
    ///   - passphrase: called when an encrypted private key must be unlocked; nil means only unencrypted keys work.
    ///   - maximumAttempts: tries per key before failing with ``EFSError/Code/wrongPassphrase``.
    public init(keyStore: KeyStore = KeyStore(root: KeyStore.defaultLocation()), passphrase: PassphraseProvider?, maximumAttempts: Int = 1) {
        self.keyStore = keyStore
        self.passphraseProvider = passphrase
        self.maximumAttempts = max(1, maximumAttempts)
    }

    /// The certificate of the current key (SetUserFileEncryptionKey), used for newly encrypted files.
    public func currentCertificate() throws(EFSError) -> EFSCertificate {
        // The pointer is read again only when its file changed: `efs key use` replaces it by a rename, which gives it
        // another inode and ctime. One lstat instead of an open, two reads and a certificate lookup, for each file
        // the mount creates.
        let stamp = keyStore.currentFileStamp()
        if let stamp, let last = lastCurrent.withLock({ $0 }), last.stamp == stamp,
           let cert = certificates.withLock({ $0[last.thumbprint] }) {
            return cert
        }
        guard let t = keyStore.currentThumbprint() else {
            if try keyStore.list().contains(where: \.hasPrivateKey) {
                throw EFSError(.noUserKeys, "no current EFS key is set: run 'efs key use THUMBPRINT'")
            }
            throw EFSError(.noUserKeys, "you have no EFS key: run 'efs key new' first")
        }
        // The pointer to the current key is read every time (`efs key use` may change it while a mount runs);
        // the certificate it names is parsed once per session.
        // A stamp taken before a concurrent change is paired with the new thumbprint at worst; the next call then sees
        // a newer stamp and reads the pointer again.
        if let stamp { lastCurrent.withLock { $0 = (stamp, t) } }
        if let cert = certificates.withLock({ $0[t] }) { return cert }
        let cert = try keyStore.certificate(t)
        certificates.withLock { $0[t] = cert }
        return cert
    }

    /// Unlocks (once) and returns the private key for `thumbprint`.
    func privateKey(_ thumbprint: Thumbprint, displayName: String) throws(EFSError) -> UnlockedKey {
        if let k = unlocked.withLock({ $0[thumbprint] }) { return k }
        let bytes = try keyStore.privateKeyFile(thumbprint)
        var attempt = 1
        while true {
            do {
                let key = try PrivateKeyFile.decode(bytes) {
                    guard let provider = passphraseProvider else {
                        throw EFSError(.wrongPassphrase, "the key \(thumbprint) is passphrase-protected and no passphrase was given (use --passphrase-file or a terminal)")
                    }
                    return try provider(PassphraseRequest(thumbprint: thumbprint, displayName: displayName, attempt: attempt))
                }
                let k = UnlockedKey(key)
                unlocked.withLock { $0[thumbprint] = k }
                return k
            } catch let e as FormatError where e.code == .authenticationFailed {
                if attempt >= maximumAttempts {
                    throw EFSError(.wrongPassphrase, "wrong passphrase for the key \(displayName) (\(thumbprint))")
                }
                attempt += 1
            } catch let e as EFSError {
                throw e
            } catch let e as FormatError {
                throw EFSError(.corrupt, "\(keyStore.keyPath(thumbprint)): \(e.message)", cause: e)
            } catch {
                throw EFSError(.wrongPassphrase, "cannot read a passphrase: \(error)", cause: error)
            }
        }
    }

    /// Unwraps the FEK of a file with any key of this session that fits one of its DDF or DRF entries, and
    /// authenticates the metadata with it.
    func fileKey(for metadata: FileMetadata, path: FilePath?) throws(EFSError) -> FileEncryptionKey {
        // Keys already unlocked first (including keys given with ``useKey(_:)``), then the rest of the key
        // store's in key-list order (each may prompt).
        let cached = unlocked.withLock { Set($0.keys) }
        let entries = metadata.allEntries.filter { cached.contains($0.thumbprint) || keyStore.hasPrivateKey($0.thumbprint) }
        let ordered = entries.sorted { a, b in
            func rank(_ e: KeyEntry) -> Int { cached.contains(e.thumbprint) ? 0 : 1 }
            return rank(a) < rank(b)
        }
        var lastError: EFSError?
        for entry in ordered {
            let key: UnlockedKey
            do { key = try privateKey(entry.thumbprint, displayName: entry.displayName) } catch {
                lastError = error
                continue
            }
            let fek: FileEncryptionKey
            do { fek = try key.key.unwrap(entry, fileID: metadata.fileID) } catch { continue }
            do { try metadata.authenticate(fek) } catch {
                throw EFSError(.authenticationFailed, "\(path.map { "\($0): " } ?? "")the file's key lists were modified (metadata authentication failed)")
            }
            return fek
        }
        if let lastError, lastError.code == .wrongPassphrase { throw lastError }
        let who = metadata.users.map { "\($0.displayName) (\($0.thumbprint))" }
            + metadata.recoveryAgents.map { "recovery agent \($0.displayName) (\($0.thumbprint))" }
        throw EFSError(.noKey, "no key in your key store can open \(path?.string ?? "the file"); it is encrypted for: \(who.joined(separator: ", "))")
    }

    /// Lets this session open files with a key from outside the key store (`efs windows export --key`), for the
    /// certificate thumbprint the key file names. The key stays in memory only, like an unlocked key.
    public func useKey(_ key: WindowsKey) throws(EFSError) {
        guard let t = key.thumbprint, let thumbprint = Thumbprint(bytes: t) else {
            throw EFSError(.invalidArgument, "\(key.source) names no certificate: give the key's certificate with --cert")
        }
        unlocked.withLock { $0[thumbprint] = key.unlocked }
    }

    /// Drops every unlocked private key from memory (they are unlocked again, with a passphrase, when needed).
    public func forgetKeys() {
        unlocked.withLock { $0.removeAll() }
    }

    /// Thumbprints of every key in the store that has a private key.
    func ownThumbprints() throws(EFSError) -> Set<Thumbprint> {
        Set(try keyStore.list().filter(\.hasPrivateKey).map(\.thumbprint))
    }
}

/// An unlocked private key, shared by the session's cache.
final class UnlockedKey: Sendable {
    let key: UserPrivateKey
    init(_ key: consuming UserPrivateKey) { self.key = key }
}
