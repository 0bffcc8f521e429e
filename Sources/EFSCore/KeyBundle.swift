// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import SwiftASN1

/// The certificates and private keys found in a PEM file (or a single DER certificate), as `efs key import` reads
/// them.
public struct KeyBundle: Sendable {
    public var certificates: [EFSCertificate] = []
    /// Each private key block re-encoded as its own PEM text, for ``PrivateKeyFile/decode(_:passphrase:)``.
    public var privateKeys: [String] = []

    /// Most PEM blocks accepted in one file.
    public static let maximumBlocks = 64

    public init(parsing bytes: [UInt8]) throws(FormatError) {
        guard bytes.count <= Limits.maximumKeyFileSize else {
            throw .limitExceeded("key file", value: UInt64(bytes.count), maximum: Limits.maximumKeyFileSize)
        }
        guard let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") else {
            certificates = [try EFSCertificate(der: bytes)]
            return
        }
        let docs: [PEMDocument]
        do { docs = try PEMDocument.parseMultiple(pemString: text) } catch {
            throw .malformed("not valid PEM: \(error)")
        }
        guard docs.count <= Self.maximumBlocks else {
            throw .limitExceeded("PEM blocks", value: UInt64(docs.count), maximum: Self.maximumBlocks)
        }
        for doc in docs {
            switch doc.discriminator {
            case "CERTIFICATE": certificates.append(try EFSCertificate(der: doc.derBytes))
            case "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY": privateKeys.append(doc.pemString + "\n")
            default: continue
            }
        }
        guard !certificates.isEmpty || !privateKeys.isEmpty else {
            throw .malformed("no certificate or private key in the file")
        }
    }
}
