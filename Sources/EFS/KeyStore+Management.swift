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

    /// Imports certificates and private keys from a PEM (or DER certificate) file.
    ///
    /// A private key is stored only with its certificate (matched by public key). An encrypted key is stored as it
    /// is; an unencrypted key is encrypted with `protect` unless that is nil.
    ///
    /// - Parameter passphrase: unlocks encrypted keys in the file.
    public func importFile(_ bytes: [UInt8], source: String, passphrase: () throws -> Passphrase, protect: Passphrase?) throws(EFSError) -> [ImportResult] {
        let bundle: KeyBundle
        do { bundle = try KeyBundle(parsing: bytes) } catch { throw EFSError(.corrupt, "\(source): \(error.message)", cause: error) }
        var results: [ImportResult] = []
        var used = Set<Int>()
        for cert in bundle.certificates {
            var stored = false
            for (i, pem) in bundle.privateKeys.enumerated() where !used.contains(i) {
                let key: UserPrivateKey
                do { key = try PrivateKeyFile.decode(Array(pem.utf8), passphrase: passphrase) } catch let e as FormatError where e.code == .authenticationFailed {
                    throw EFSError(.wrongPassphrase, "\(source): wrong passphrase for the private key", cause: e)
                } catch let e as FormatError {
                    throw EFSError(.corrupt, "\(source): \(e.message)", cause: e)
                } catch let e as EFSError {
                    throw e
                } catch {
                    throw EFSError(.wrongPassphrase, "\(source): cannot read a passphrase: \(error)", cause: error)
                }
                guard key.matches(cert) else { continue }
                used.insert(i)
                try add(cert)
                if PrivateKeyFile.isEncrypted(pem) {
                    try FileIO.writeAtomically(keyPath(cert.thumbprint), Array(pem.utf8), mode: 0o600)
                } else {
                    let out = PrivateKeyFile.encode(key, passphrase: protect)
                    try FileIO.writeAtomically(keyPath(cert.thumbprint), Array(out.utf8), mode: 0o600)
                }
                stored = true
                break
            }
            if !stored { try add(cert) }
            results.append(ImportResult(certificate: cert, withPrivateKey: stored))
        }
        if used.count < bundle.privateKeys.count {
            throw EFSError(.invalidArgument, "\(source): a private key has no matching certificate in the file; import the key together with its certificate")
        }
        return results
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
