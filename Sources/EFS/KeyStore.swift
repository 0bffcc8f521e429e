// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// A user's EFS key store: a directory of X.509 certificates and PKCS#8 private keys.
///
/// ```
/// $EFS_HOME/            0700
///   current             thumbprint of the current key (SetUserFileEncryptionKey), one line
///   certs/<THUMB>.pem   certificate, PEM        0600
///   keys/<THUMB>.pem    private key, PKCS#8 PEM (ENCRYPTED PRIVATE KEY unless --no-passphrase)  0600
/// ```
/// `Documentation/key-store-format.md`.
///
/// ```swift
/// let store = KeyStore(root: KeyStore.defaultLocation())
/// let keys = try store.list()
/// ```
public struct KeyStore: Sendable {
    public let root: FilePath

    public init(root: FilePath) { self.root = root }

    /// `$EFS_HOME`, else `$XDG_DATA_HOME/efs`, else `~/.local/share/efs`.
    public static func defaultLocation() -> FilePath {
        if let h = Sys.environment("EFS_HOME"), !h.isEmpty { return FilePath(h) }
        if let x = Sys.environment("XDG_DATA_HOME"), !x.isEmpty { return FilePath(x).appending("efs") }
        return FilePath(Sys.homeDirectory()).appending(".local/share/efs")
    }

    var certsDir: FilePath { root.appending("certs") }
    var keysDir: FilePath { root.appending("keys") }
    var currentFile: FilePath { root.appending("current") }

    /// One entry of the store.
    public struct Entry: Sendable, Hashable {
        public var certificate: EFSCertificate
        public var hasPrivateKey: Bool
        public var isCurrent: Bool
        public var thumbprint: Thumbprint { certificate.thumbprint }
        public var privateKeyIsEncrypted: Bool
    }

    /// Creates the store directories with mode 0700 (and tightens them if they exist).
    public func create() throws(EFSError) {
        var cur = FilePath(root.root?.string ?? "")
        for c in root.components {
            cur.append(c)
            if !FileIO.exists(cur) {
                do { try Sys.mkdir(cur, mode: 0o700) } catch {
                    if error != .fileExists { throw EFSError.system(error, "cannot create the key store", cur) }
                }
            }
        }
        for d in [root, certsDir, keysDir] {
            do {
                if !FileIO.exists(d) { try Sys.mkdir(d, mode: 0o700) }
                try Sys.chmod(d, 0o700)
            } catch {
                throw EFSError.system(error, "cannot create the key store", d)
            }
        }
    }

    /// Every certificate in the store, sorted by name then thumbprint.
    public func list() throws(EFSError) -> [Entry] {
        guard FileIO.exists(certsDir) else { return [] }
        let current = currentThumbprint()
        var out: [Entry] = []
        let names = try mapErrors(certsDir, "cannot list") { try Sys.listDirectory(certsDir) }
        for e in names where e.name.hasSuffix(".pem") && !e.isDirectory {
            let bytes = try FileIO.read(certsDir.appending(e.name), maximum: Limits.maximumKeyFileSize)
            let cert: EFSCertificate
            do { cert = try EFSCertificate(pemOrDER: bytes) } catch {
                throw EFSError(.corrupt, "\(certsDir.appending(e.name)): \(error.message)", cause: error)
            }
            let keyPath = keyPath(cert.thumbprint)
            var encrypted = false
            let hasKey = FileIO.exists(keyPath)
            if hasKey, let k = try? FileIO.read(keyPath, maximum: Limits.maximumKeyFileSize) {
                encrypted = PrivateKeyFile.isEncrypted(String(decoding: k, as: UTF8.self))
            }
            out.append(Entry(certificate: cert, hasPrivateKey: hasKey, isCurrent: cert.thumbprint == current, privateKeyIsEncrypted: encrypted))
        }
        return out.sorted { ($0.certificate.displayName, $0.thumbprint) < ($1.certificate.displayName, $1.thumbprint) }
    }

    func certPath(_ t: Thumbprint) -> FilePath { certsDir.appending("\(t.hex).pem") }
    func keyPath(_ t: Thumbprint) -> FilePath { keysDir.appending("\(t.hex).pem") }

    /// The current key's thumbprint, if one is set and its certificate is present.
    /// What identifies one version of the current-key pointer file (it is only ever replaced by a rename).
    public struct FileStamp: Sendable, Equatable {
        var device: UInt64, inode: UInt64, size: Int64
        var modified: Int64, modifiedNanoseconds: Int, changed: Int64, changedNanoseconds: Int
    }

    /// The stamp of the current-key pointer file; nil when it does not exist.
    public func currentFileStamp() -> FileStamp? {
        guard let st = try? Sys.lstat(currentFile) else { return nil }
        return FileStamp(device: st.device, inode: st.inode, size: st.size,
                         modified: Int64(st.modificationTime.tv_sec), modifiedNanoseconds: Int(st.modificationTime.tv_nsec),
                         changed: Int64(st.changeTime.tv_sec), changedNanoseconds: Int(st.changeTime.tv_nsec))
    }

    public func currentThumbprint() -> Thumbprint? {
        guard let bytes = try? FileIO.read(currentFile, maximum: 256) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        guard let t = Thumbprint(text), FileIO.exists(certPath(t)) else { return nil }
        return t
    }

    /// Makes `thumbprint` the current key (SetUserFileEncryptionKey). The store must hold its private key.
    public func setCurrent(_ thumbprint: Thumbprint) throws(EFSError) {
        guard FileIO.exists(certPath(thumbprint)) else {
            throw EFSError(.fileNotFound, "no certificate \(thumbprint) in the key store \(root)")
        }
        guard FileIO.exists(keyPath(thumbprint)) else {
            throw EFSError(.noUserKeys, "the key store has no private key for \(thumbprint); import it first")
        }
        if try certificate(thumbprint).isRecoveryAgent {
            throw EFSError(.invalidArgument, "\(thumbprint) is a recovery agent certificate; choose a user key as the current key")
        }
        try create()
        try FileIO.writeAtomically(currentFile, Array("\(thumbprint.hex)\n".utf8), mode: 0o600)
    }

    /// The certificate with this thumbprint.
    public func certificate(_ thumbprint: Thumbprint) throws(EFSError) -> EFSCertificate {
        let p = certPath(thumbprint)
        guard FileIO.exists(p) else { throw EFSError(.fileNotFound, "no certificate \(thumbprint) in the key store \(root)") }
        let bytes = try FileIO.read(p, maximum: Limits.maximumKeyFileSize)
        do { return try EFSCertificate(pemOrDER: bytes) } catch {
            throw EFSError(.corrupt, "\(p): \(error.message)", cause: error)
        }
    }

    public func hasPrivateKey(_ thumbprint: Thumbprint) -> Bool { FileIO.exists(keyPath(thumbprint)) }

    /// Stores a certificate without a private key (another user's, or a recovery agent's).
    public func add(_ cert: EFSCertificate) throws(EFSError) {
        try create()
        try FileIO.writeAtomically(certPath(cert.thumbprint), Array(cert.pem.utf8), mode: 0o600)
    }

    /// Stores a certificate and its private key, encrypted with `passphrase` unless it is nil.
    public func add(_ cert: EFSCertificate, privateKey: borrowing UserPrivateKey, passphrase: Passphrase?,
                    iterations: Int = PrivateKeyFile.defaultIterations) throws(EFSError) {
        guard privateKey.matches(cert) else {
            throw EFSError(.invalidArgument, "the private key does not belong to the certificate \(cert.thumbprint)")
        }
        let pem = PrivateKeyFile.encode(privateKey, passphrase: passphrase, iterations: iterations)
        try add(cert)
        try FileIO.writeAtomically(keyPath(cert.thumbprint), Array(pem.utf8), mode: 0o600)
    }

    /// Reads the raw private key file of `thumbprint`.
    func privateKeyFile(_ thumbprint: Thumbprint) throws(EFSError) -> [UInt8] {
        try FileIO.read(keyPath(thumbprint), maximum: Limits.maximumKeyFileSize)
    }

    /// Resolves a thumbprint given in full (any case, spaces allowed) or as a unique prefix of ≥ 8 hex digits.
    public func resolve(_ text: String) throws(EFSError) -> Thumbprint {
        let cleaned = String(text.unicodeScalars.filter { $0 != " " && $0 != ":" }).uppercased()
        guard !cleaned.isEmpty, Hex.decode(cleaned.count % 2 == 0 ? cleaned : cleaned + "0") != nil else {
            throw EFSError(.invalidArgument, "'\(text)' is not a thumbprint (hex digits, spaces allowed)")
        }
        if let t = Thumbprint(cleaned) { return t }
        guard cleaned.count >= 8 else {
            throw EFSError(.invalidArgument, "thumbprint prefix '\(text)' is too short: give at least 8 hex digits")
        }
        let matches = try list().map(\.thumbprint).filter { $0.hex.hasPrefix(cleaned) }
        switch matches.count {
        case 1: return matches[0]
        case 0: throw EFSError(.fileNotFound, "no certificate in the key store starts with \(cleaned)")
        default: throw EFSError(.invalidArgument, "thumbprint prefix \(cleaned) is ambiguous: \(matches.map(\.description).joined(separator: ", "))")
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
