// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// The Certificate Data of a Public Key Information (`windows-efs-metadata.md` §4.2, MS-EFSR 2.2.2.1.4): the
/// certificate's thumbprint and three optional NUL-terminated UTF-16LE names.
public struct WindowsCertificateHash: Sendable, Hashable {
    /// SHA-1 of the DER certificate (20 bytes as Windows writes it; 1…100 accepted).
    public var thumbprint: [UInt8]
    /// The CryptoAPI key container name (absent for recovery agents and most non-owner users).
    public var containerName: String?
    /// The CryptoAPI provider name, e.g. "Microsoft Enhanced Cryptographic Provider v1.0".
    public var providerName: String?
    /// The user's display name, e.g. "test(test@WINDOWS10-TEST)".
    public var displayName: String?

    public init(
        thumbprint: [UInt8], containerName: String? = nil, providerName: String? = nil, displayName: String? = nil
    ) {
        self.thumbprint = thumbprint
        self.containerName = containerName
        self.providerName = providerName
        self.displayName = displayName
    }
}

/// The Public Key Information of a key list entry (§4.2, MS-EFSR 2.2.2.1.3). Only type 3 ("certificate
/// thumbprint"), the one MS-EFSR allows, is accepted; ntfs-3g's type 1 (CryptoAPI container) is refused.
public struct WindowsPublicKeyInfo: Sendable, Hashable {
    /// The Owner Hint: the user's SID, or nil when absent.
    public var sid: WindowsSID?
    /// The Certificate Data: thumbprint and names.
    public var certificate: WindowsCertificateHash

    public init(sid: WindowsSID?, certificate: WindowsCertificateHash) {
        self.sid = sid
        self.certificate = certificate
    }

    public var thumbprint: [UInt8] { certificate.thumbprint }
    public var displayName: String? { certificate.displayName }
}

/// A DDF or DRF key list entry (§4.2, MS-EFSR 2.2.2.1.2): who may decrypt, and the FEK wrapped for them.
///
/// ```swift
/// for entry in metadata.ddf { print(entry.publicKeyInfo.displayName ?? "?", entry.publicKeyInfo.sid as Any) }
/// ```
public struct WindowsKeyEntry: Sendable, Hashable {
    /// §4.2 Flags: 0 = FEK wrapped with RSA; 1 = wrapped with AES-256 (smart cards; not supported for unwrapping).
    public var flags: UInt32
    public var publicKeyInfo: WindowsPublicKeyInfo
    /// The Encrypted FEK exactly as stored: RSA PKCS#1 v1.5 ciphertext, **byte-reversed** (little-endian,
    /// CryptoAPI convention; §4.2).
    public var encryptedFEK: [UInt8]

    /// §4.2 flag value: the FEK is wrapped with RSA.
    public static let flagRSA: UInt32 = 0
    /// §4.2 flag value: the FEK is wrapped with AES-256 under SHA-256(RSA-sign(L"MICROSOFTE")).
    public static let flagAESWrapped: UInt32 = 1

    public init(flags: UInt32 = WindowsKeyEntry.flagRSA, publicKeyInfo: WindowsPublicKeyInfo, encryptedFEK: [UInt8]) {
        self.flags = flags
        self.publicKeyInfo = publicKeyInfo
        self.encryptedFEK = encryptedFEK
    }
}
