// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

extension KeyStore {
    /// Makes a new key pair and self-signed EFS certificate and stores them.
    ///
    /// - Parameters:
    ///   - passphrase: protects the private key on disk; nil stores it unencrypted (`--no-passphrase`).
    ///   - makeCurrent: make it the current key (SetUserFileEncryptionKey). Recovery agent keys never are.
    public func generateKey(name: String, kind: UserPrivateKey.Kind, recoveryAgent: Bool, passphrase: Passphrase?,
                            iterations: Int = PrivateKeyFile.defaultIterations) throws(EFSError) -> EFSCertificate {
        do {
            let key = try UserPrivateKey.generate(kind)
            let cert = try key.makeSelfSignedCertificate(name: name, recoveryAgent: recoveryAgent)
            try add(cert, privateKey: key, passphrase: passphrase, iterations: iterations)
            if !recoveryAgent { try setCurrent(cert.thumbprint) }
            return cert
        } catch let e as EFSError {
            throw e
        } catch let e as FormatError {
            throw EFSError(.notSupported, e.message, cause: e)
        } catch {
            throw EFSError(.ioError, "\(error)", cause: error)
        }
    }

    /// What ``importFile(_:passphrase:protect:)`` stored.
    public struct ImportResult: Sendable {
        public var certificate: EFSCertificate
        public var withPrivateKey: Bool
    }

    /// Imports certificates and private keys from PEM (or DER certificate) files, taken together: a key in one file
    /// may belong to a certificate in another, or to a certificate already in the store.
    ///
    /// An encrypted key is stored as it is; an unencrypted key is encrypted with `protect` unless that is nil.
    ///
    /// - Parameter passphrase: unlocks encrypted keys in the files.
    public func importFiles(_ files: [(bytes: [UInt8], source: String)], passphrase: () throws -> Passphrase, protect: Passphrase?) throws(EFSError) -> [ImportResult] {
        var certs: [EFSCertificate] = []
        var keys: [(pem: String, source: String)] = []
        for f in files {
            do {
                let bundle = try KeyBundle(parsing: f.bytes)
                certs += bundle.certificates
                keys += bundle.privateKeys.map { ($0, f.source) }
            } catch {
                throw EFSError(.corrupt, "\(f.source): \(error.message)", cause: error)
            }
        }
        let known = (try? list().map(\.certificate)) ?? []
        var withKey = Set<Thumbprint>()
        for k in keys {
            let key = try Self.decodeKey(k.pem, source: k.source, passphrase: passphrase)
            var match: EFSCertificate?
            for c in certs + known where match == nil && key.matches(c) { match = c }
            guard let cert = match else {
                throw EFSError(.invalidArgument, "\(k.source): the private key matches no certificate given or in the key store; import it together with its certificate")
            }
            try add(cert)
            let text = PrivateKeyFile.isEncrypted(k.pem) ? k.pem : PrivateKeyFile.encode(key, passphrase: protect)
            try FileIO.writeAtomically(keyPath(cert.thumbprint), Array(text.utf8), mode: 0o600)
            withKey.insert(cert.thumbprint)
            if !certs.contains(cert) { certs.append(cert) }
        }
        var results: [ImportResult] = []
        var seen = Set<Thumbprint>()
        for c in certs where seen.insert(c.thumbprint).inserted {
            if !withKey.contains(c.thumbprint) { try add(c) }
            results.append(ImportResult(certificate: c, withPrivateKey: withKey.contains(c.thumbprint) || hasPrivateKey(c.thumbprint)))
        }
        return results
    }

    private static func decodeKey(_ pem: String, source: String, passphrase: () throws -> Passphrase) throws(EFSError) -> UserPrivateKey {
        do { return try PrivateKeyFile.decode(Array(pem.utf8), passphrase: passphrase) } catch let e as FormatError where e.code == .authenticationFailed {
            throw EFSError(.wrongPassphrase, "\(source): wrong passphrase for the private key", cause: e)
        } catch let e as FormatError {
            throw EFSError(.corrupt, "\(source): \(e.message)", cause: e)
        } catch let e as EFSError {
            throw e
        } catch {
            throw EFSError(.wrongPassphrase, "\(source): cannot read a passphrase: \(error)", cause: error)
        }
    }

    /// The private key of `thumbprint` as a PEM text that openssl reads, encrypted with `protect`.
    ///
    /// An encrypted stored key is returned as it is (its passphrase stays the same); an unencrypted one is
    /// encrypted with `protect` (nil exports it unencrypted).
    public func exportPrivateKey(_ thumbprint: Thumbprint, protect: Passphrase?) throws(EFSError) -> String {
        guard hasPrivateKey(thumbprint) else { throw EFSError(.noUserKeys, "the key store has no private key for \(thumbprint)") }
        let bytes = try privateKeyFile(thumbprint)
        let text = String(decoding: bytes, as: UTF8.self)
        if PrivateKeyFile.isEncrypted(text) { return text }
        do {
            let key = try PrivateKeyFile.decode(bytes) { throw EFSError(.corrupt, "unexpected") }
            return PrivateKeyFile.encode(key, passphrase: protect)
        } catch {
            throw EFSError(.corrupt, "\(keyPath(thumbprint)): \(error)", cause: error)
        }
    }
}
