// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSWindows
import SystemPackage

/// A Windows user's or recovery agent's key for opening Windows EFS data: an RSA private key (1024 bits or more)
/// from a PKCS#12 file (`cipher /x`, the certificate manager) or a PEM/DER PKCS#8 file (encrypted or not), with the
/// thumbprint of its certificate when one is known, and the certificates that came with it.
///
/// ```swift
/// let key = try WindowsKey.load(pfxBytes, source: "alice.pfx", certificate: nil) { myPassword }
/// let (fek, match) = try key.unwrap(metadata, path: nil)
/// ```
public final class WindowsKey: Sendable {
    /// The private key, shareable with an ``EFSSession`` (``EFSSession/useKey(_:)``).
    let unlocked: UnlockedKey
    /// SHA-1 of the key's certificate: from `--cert`, the PKCS#12 file, or a certificate in the PEM file.
    public let thumbprint: [UInt8]?
    /// Where the key came from, for messages.
    public let source: String
    /// The certificates of the PKCS#12 file (or the `--cert` certificate), with why each cannot be a swift-efs
    /// certificate when it cannot (a 1024-bit RSA key, say).
    let certificates: [(thumbprint: Thumbprint, certificate: Result<EFSCertificate, FormatError>)]

    init(
        _ key: consuming UserPrivateKey, thumbprint: [UInt8]?, source: String,
        certificates: [(thumbprint: Thumbprint, certificate: Result<EFSCertificate, FormatError>)]
    ) {
        self.unlocked = UnlockedKey(key)
        self.thumbprint = thumbprint
        self.source = source
        self.certificates = certificates
    }

    /// Loads a key file.
    ///
    /// - Parameters:
    ///   - bytes: a PKCS#12 file (DER or PEM), or a PEM/DER PKCS#8 (or PKCS#1) private key, optionally followed by
    ///     its certificate in the same PEM file.
    ///   - certificate: the key's certificate (PEM or DER), whose SHA-1 thumbprint chooses the DDF or DRF entry.
    ///     In a PKCS#12 file holding several keys it also chooses the key.
    ///   - passphrase: asked for only when needed (PKCS#12 always; encrypted PKCS#8).
    /// - Throws: ``EFSError/Code/wrongPassphrase`` for a wrong password; ``EFSError/Code/notSupported`` for a key
    ///   that is not RSA of 1024 bits or more; ``EFSError/Code/corrupt`` for files that are not keys.
    public static func load(
        _ bytes: [UInt8], source: String, certificate: [UInt8]?, passphrase: () throws -> Passphrase
    ) throws(EFSError) -> WindowsKey {
        var certs: [(thumbprint: Thumbprint, certificate: Result<EFSCertificate, FormatError>)] = []
        var thumbprint: [UInt8]?
        if let certificate {
            let der: [UInt8]
            do { der = try EFSCertificate.derBytes(pemOrDER: certificate) } catch {
                throw EFSError(.corrupt, "the certificate for \(source): \(error.message)", cause: error)
            }
            let t = Thumbprint(certificateDER: der)
            thumbprint = t.bytes
            certs.append((t, Result { () throws(FormatError) in try EFSCertificate(der: der) }))
        }
        if PKCS12File.isPKCS12(bytes) {
            let pfx: PKCS12File
            do {
                pfx = try PKCS12File(bytes: bytes, passphrase: try passphrase())
            } catch let e as FormatError {
                if e.code == .authenticationFailed {
                    throw EFSError(.wrongPassphrase, "wrong password for \(source)", cause: e)
                }
                throw windowsError(e, nil, "PKCS#12 file \(source)")
            } catch let e as EFSError {
                throw e
            } catch {
                throw EFSError(.wrongPassphrase, "cannot read a password for \(source): \(error)", cause: error)
            }
            for c in pfx.certificates {
                certs.append((c.thumbprint, Result { () throws(FormatError) in try c.efsCertificate() }))
            }
            // The key whose certificate is the one given, else the first key.
            let bag = pfx.keys.first { $0.certificate?.thumbprint.bytes == thumbprint } ?? pfx.keys.first
            guard let bag else { throw EFSError(.invalidArgument, "\(source) holds no private key") }
            return WindowsKey(
                try legacyKey(bag, source), thumbprint: thumbprint ?? bag.certificate?.thumbprint.bytes,
                source: source, certificates: certs)
        }
        // PEM or DER PKCS#8, maybe with the certificate in the same PEM text.
        if thumbprint == nil, let text = String(validating: bytes, as: UTF8.self), text.contains("BEGIN CERTIFICATE"),
            let der = try? EFSCertificate.derBytes(pemOrDER: bytes)
        {
            let t = Thumbprint(certificateDER: der)
            thumbprint = t.bytes
            certs.append((t, Result { () throws(FormatError) in try EFSCertificate(der: der) }))
        }
        return WindowsKey(try pemKey(bytes, source, passphrase), thumbprint: thumbprint, source: source, certificates: certs)
    }

    private static func legacyKey(_ bag: PKCS12File.KeyBag, _ source: String) throws(EFSError) -> UserPrivateKey {
        do { return try bag.legacyRSAPrivateKey() } catch {
            throw EFSError(.notSupported, "\(source): \(error.message) (Windows EFS uses RSA keys)", cause: error)
        }
    }

    private static func pemKey(
        _ bytes: [UInt8], _ source: String, _ passphrase: () throws -> Passphrase
    ) throws(EFSError) -> UserPrivateKey {
        do {
            return try PrivateKeyFile.decode(bytes, legacyRSA: true, passphrase: passphrase)
        } catch let e as FormatError {
            switch e.code {
            case .authenticationFailed: throw EFSError(.wrongPassphrase, "wrong passphrase for \(source)", cause: e)
            case .unsupportedAlgorithm:
                throw EFSError(.notSupported, "\(source): \(e.message) (Windows EFS uses RSA keys)", cause: e)
            default:
                throw EFSError(.corrupt, "\(source) is not a PKCS#12 file or a PEM/DER private key: \(e.message)", cause: e)
            }
        } catch let e as EFSError {
            throw e
        } catch {
            throw EFSError(.wrongPassphrase, "cannot read a passphrase for \(source): \(error)", cause: error)
        }
    }

    /// The certificate with this thumbprint among those that came with the key, or why it cannot be used.
    func certificate(_ t: Thumbprint) -> Result<EFSCertificate, FormatError>? {
        certificates.first { $0.thumbprint == t }?.certificate
    }

    // MARK: - Unwrapping

    /// Unwraps the FEK of `metadata`: from the entries whose thumbprint is the key's, or, without a known
    /// thumbprint, from whichever entry the key opens.
    ///
    /// - Throws: ``EFSError/Code/noKey`` listing every entry's name and thumbprint when the key matches none;
    ///   ``EFSError/Code/authenticationFailed`` when an entry matches by thumbprint but the key does not decrypt
    ///   it; ``EFSError/Code/notSupported`` for AES-wrapped entries and unknown algorithms;
    ///   ``EFSError/Code/corrupt`` for a decrypted FEK that is malformed.
    public func unwrap(
        _ metadata: WindowsEFSMetadata, path: FilePath?
    ) throws(EFSError) -> (WindowsFEK, WindowsEFSMetadata.Match) {
        let at = path.map { "\($0): " } ?? ""
        let matches = thumbprint.map { metadata.entries(matching: $0) }
        if let matches, matches.isEmpty { throw noMatch(metadata, at) }
        do {
            return try metadata.unwrapFEK(using: unlocked.key, thumbprint: thumbprint)
        } catch {
            if error.code == .authenticationFailed {
                guard let m = matches?.first else { throw noMatch(metadata, at) }
                throw EFSError(
                    .authenticationFailed,
                    "\(at)\(source) matches \(m.isRecovery ? "DRF" : "DDF") entry \(m.index) (\(m.entry.displayName)) by thumbprint but does not decrypt its key: a different key, or modified data",
                    cause: error)
            }
            throw windowsError(error, path, "file encryption key")
        }
    }

    private func noMatch(_ metadata: WindowsEFSMetadata, _ at: String) -> EFSError {
        let list = metadata.allEntries.map { e in
            "\(e.isRecovery ? "recovery agent " : "")\(e.entry.displayName) (\(e.entry.thumbprintDescription))"
        }
        let mine = thumbprint.map { " (certificate \(Hex.grouped($0)))" } ?? ""
        return EFSError(
            .noKey,
            "\(at)\(source)\(mine) matches no DDF or DRF entry; the file is encrypted for: \(list.joined(separator: ", "))")
    }
}
