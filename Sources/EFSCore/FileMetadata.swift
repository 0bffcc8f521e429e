// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import Foundation

/// The key lists of an encrypted file: the Data Decryption Field (one entry per user) and the Data Recovery Field
/// (one entry per recovery agent), each entry wrapping the same FEK for one certificate.
///
/// ```
/// 0   2  version (1)
/// 2   2  flags (none defined)
/// 4   16 file id (equals the header's)
/// 20  2  DDF count (1…500)
/// 22  2  DRF count (0…500)
/// 24  …  DDF entries, then DRF entries (``KeyEntry``)
/// end 32 HMAC-SHA256(metadata key, "EFS1META" ‖ all bytes before the MAC)
/// ```
/// The MAC needs the FEK, so anyone holding a key detects an edited, swapped or duplicated entry. Without a key
/// the structure and each entry's thumbprint (SHA-1 of its certificate) are still checked.
/// `Documentation/file-format.md` §4.2.
public struct FileMetadata: Sendable, Equatable {
    public static let version: UInt16 = 1
    public static let macSize = 32

    public var fileID: FileID
    /// Users (DDF).
    public var users: [KeyEntry]
    /// Recovery agents (DRF).
    public var recoveryAgents: [KeyEntry]
    /// The MAC as read from disk, or computed by ``encoded(_:)``.
    public private(set) var mac: [UInt8]

    public init(fileID: FileID, users: [KeyEntry], recoveryAgents: [KeyEntry]) {
        self.fileID = fileID
        self.users = users
        self.recoveryAgents = recoveryAgents
        self.mac = []
    }

    /// Every entry, users first.
    public var allEntries: [KeyEntry] { users + recoveryAgents }

    func unauthenticatedBody() -> [UInt8] {
        var w = ByteWriter()
        w.write(Self.version)
        w.write(UInt16(0))
        w.write(bytes: fileID.bytes)
        w.write(UInt16(users.count))
        w.write(UInt16(recoveryAgents.count))
        for e in users + recoveryAgents { e.encode(into: &w) }
        return w.bytes
    }

    /// The encoded body, authenticated with the FEK.
    public func encoded(_ fek: FileEncryptionKey) -> [UInt8] {
        precondition(fek.fileID == fileID, "metadata and FEK belong to different files")
        precondition(!users.isEmpty && users.count <= Limits.maximumEntriesPerList)
        precondition(recoveryAgents.count <= Limits.maximumEntriesPerList)
        let body = unauthenticatedBody()
        return body + fek.mac(fek.metadataKey, KeyLabels.metadataMACPrefix, body)
    }

    /// Decodes the structure without any key. Call ``authenticate(_:)`` once the FEK is known.
    public init(decoding bytes: some Collection<UInt8>) throws(FormatError) {
        let all = Array(bytes)
        guard all.count <= Limits.maximumMetadataSize else {
            throw .limitExceeded("metadata", value: UInt64(all.count), maximum: Limits.maximumMetadataSize)
        }
        guard all.count >= 24 + Self.macSize else { throw .truncated("metadata") }
        var r = ByteReader(all[0..<(all.count - Self.macSize)])
        // §4.2: version and flags first.
        let version = try r.readUInt16("metadata version")
        guard version == Self.version else {
            throw FormatError(.unsupportedVersion, "metadata version \(version) is not supported")
        }
        guard try r.readUInt16("metadata flags") == 0 else {
            throw FormatError(.unknownFlags, "metadata has unknown flags")
        }
        self.fileID = try FileID(bytes: try r.readBytes(16, "metadata file id"))
        let ddf = try r.readLength(width: 2, maximum: Limits.maximumEntriesPerList, minimum: 1, "DDF count")
        let drf = try r.readLength(width: 2, maximum: Limits.maximumEntriesPerList, "DRF count")
        var users: [KeyEntry] = []
        for _ in 0..<ddf { users.append(try KeyEntry(reading: &r)) }
        var agents: [KeyEntry] = []
        for _ in 0..<drf { agents.append(try KeyEntry(reading: &r)) }
        try r.expectEnd("metadata entries")
        // §4.2: a thumbprint may appear once per list.
        for list in [users, agents] where Set(list.map(\.thumbprint)).count != list.count {
            throw .malformed("a certificate appears twice in one key list")
        }
        self.users = users
        self.recoveryAgents = agents
        self.mac = Array(all.suffix(Self.macSize))
    }

    /// Verifies the metadata MAC with the FEK. Throws ``FormatError/authenticationFailed`` on any edit.
    public func authenticate(_ fek: FileEncryptionKey) throws(FormatError) {
        guard fek.fileID == fileID else { throw .authenticationFailed }
        let expected = fek.mac(fek.metadataKey, KeyLabels.metadataMACPrefix, unauthenticatedBody())
        guard constantTimeEquals(expected, mac) else { throw .authenticationFailed }
    }
}

/// One DDF or DRF entry: a certificate, its thumbprint, and the FEK wrapped for its public key.
///
/// ```
/// 0   1  wrap algorithm (1 RSA-OAEP-SHA256, 2 HPKE P-256, 3 HPKE P-384, 4 and 5 the same with a shared enc)
/// 1   1  thumbprint length T (20)
/// 2   T  thumbprint (SHA-1 of the certificate DER)
/// …   4  certificate length C (1…32768)
/// …   C  certificate (X.509 DER)
/// …   2  wrapped key length W (1…1024)
/// …   W  wrapped FEK
/// ```
/// `Documentation/file-format.md` §4.3.
public struct KeyEntry: Sendable, Equatable {
    public var algorithm: WrapAlgorithm
    public var thumbprint: Thumbprint
    public var certificateDER: [UInt8]
    public var wrappedKey: [UInt8]

    public init(algorithm: WrapAlgorithm, thumbprint: Thumbprint, certificateDER: [UInt8], wrappedKey: [UInt8]) {
        self.algorithm = algorithm
        self.thumbprint = thumbprint
        self.certificateDER = certificateDER
        self.wrappedKey = wrappedKey
    }

    func encode(into w: inout ByteWriter) {
        w.write(algorithm.rawValue)
        w.write(UInt8(thumbprint.bytes.count))
        w.write(bytes: thumbprint.bytes)
        w.write(UInt32(certificateDER.count))
        w.write(bytes: certificateDER)
        w.write(UInt16(wrappedKey.count))
        w.write(bytes: wrappedKey)
    }

    init(reading r: inout ByteReader) throws(FormatError) {
        let alg = try r.readUInt8("wrap algorithm")
        guard let algorithm = WrapAlgorithm(rawValue: alg) else {
            throw FormatError(.unsupportedAlgorithm, "key entry uses unknown wrap algorithm \(alg)")
        }
        let tlen = try r.readLength(width: 1, maximum: Limits.maximumThumbprintSize, minimum: 1, "thumbprint length")
        guard tlen == Thumbprint.size else { throw .malformed("thumbprint length \(tlen) is not 20 (SHA-1)") }
        let tp = try r.readBytes(tlen, "thumbprint")
        let clen = try r.readLength(width: 4, maximum: Limits.maximumCertificateSize, minimum: 1, "certificate length")
        let cert = Array(try r.readBytes(clen, "certificate"))
        let wlen = try r.readLength(width: 2, maximum: Limits.maximumWrappedKeySize, minimum: 1, "wrapped key length")
        let wrapped = Array(try r.readBytes(wlen, "wrapped key"))
        // §4.3: the thumbprint must be the SHA-1 of the certificate; a changed certificate or thumbprint shows here.
        let computed = Thumbprint(certificateDER: cert)
        guard constantTimeEquals(computed.bytes, tp) else {
            throw .malformed("key entry thumbprint does not match its certificate")
        }
        self.algorithm = algorithm
        self.thumbprint = computed
        self.certificateDER = cert
        self.wrappedKey = wrapped
    }
}

/// How a FEK is wrapped for one recipient.
public enum WrapAlgorithm: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// RSA-OAEP with SHA-256 and MGF1-SHA-256, no label.
    case rsaOAEPSHA256 = 1
    /// HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
    case hpkeP256 = 2
    /// HPKE (RFC 9180) base mode, DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM.
    case hpkeP384 = 3
    /// As ``hpkeP256``, with one encapsulation shared by many wrapped keys, each wrapped under a key from the
    /// context's exporter (``SharedEncapsulation``).
    case hpkeP256Shared = 4
    /// As ``hpkeP384``, with a shared encapsulation.
    case hpkeP384Shared = 5

    public var description: String {
        switch self {
        case .rsaOAEPSHA256: "RSA-OAEP-SHA256"
        case .hpkeP256: "HPKE-P256-SHA256-AES256GCM"
        case .hpkeP384: "HPKE-P384-SHA384-AES256GCM"
        case .hpkeP256Shared: "HPKE-P256-SHA256-AES256GCM-shared"
        case .hpkeP384Shared: "HPKE-P384-SHA384-AES256GCM-shared"
        }
    }
}

/// A certificate thumbprint as Windows shows it: SHA-1 of the DER certificate.
public struct Thumbprint: Hashable, Sendable, CustomStringConvertible, Comparable {
    public static let size = 20
    public let bytes: [UInt8]

    public init(certificateDER: some DataProtocol) {
        self.bytes = Array(Insecure.SHA1.hash(data: certificateDER))
    }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.size else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses a full thumbprint given with or without spaces or colons, in any case.
    public init?(_ text: String) {
        guard let b = Hex.decode(text), b.count == Self.size else { return nil }
        self.bytes = b
    }

    /// Upper-case hex without separators (the form used in file names and JSON).
    public var hex: String { Hex.encode(bytes, uppercase: true) }

    /// The form `cipher /c` prints: upper-case hex in groups of four digits, e.g. `1A2B 3C4D …`.
    public var description: String { Hex.grouped(bytes) }

    public static func < (a: Thumbprint, b: Thumbprint) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}
