// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CFuzzDriver
import Crypto
import EFSCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Helpers shared by the fuzz targets: the libFuzzer entry shim, a deterministic file key, and "fix-ups" that
/// recompute the checksums and MACs of a mutated input so the fuzzer gets past them to the checks behind them.
///
/// A checksum or MAC is a gate no mutation gets through by chance. Each target reads a mode byte first; when a
/// mode bit is set, the target repairs the corresponding checksum or MAC before parsing, so the field checks that
/// follow the gate (generations, flags, counts, lengths) are fuzzed too. With the bit clear, the gate itself is.
public enum Fuzz {
    /// Runs libFuzzer with `callback` as the test function. Call it from `@_cdecl("<Target>_main")`.
    public static func runDriver(
        _ argc: CInt,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt {
        var argc = argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
        return LLVMFuzzerRunDriver(&argc, &argv, callback)
    }

    /// Whether `FUZZ_VERBOSE` is set: the targets then say what each input reached (for checking seeds).
    public static let verbose = getenv("FUZZ_VERBOSE") != nil

    /// Prints `message` to standard error when ``verbose``.
    public static func note(_ message: @autoclosure () -> String) {
        if verbose { FileHandle.standardError.write(Data("fuzz: \(message())\n".utf8)) }
    }

    /// Fails the run (a libFuzzer crash) when an invariant of a parser that accepted the input does not hold.
    public static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError("fuzz invariant violated: \(message())") }
    }
}

// MARK: - Deterministic key

/// A fixed File Encryption Key, so keyed MACs can be recomputed by the harness and checked by the parser.
///
/// `FileEncryptionKey` has no public initializer from bytes, so the harness wraps fixed key bytes with HPKE for a
/// fixed P-256 key (exactly as `EFSCertificate.wrap` does) and unwraps them with the public API.
public enum FuzzKey {
    /// The FEK bytes every fuzz input is checked against.
    public static let fekBytes: [UInt8] = Array(SHA256.hash(data: Array("swift-efs fuzz fek".utf8)))
    static let baseFileID = try! FileID(bytes: Array(SHA256.hash(data: Array("swift-efs fuzz file id".utf8)))[0..<16])

    static let base: FileEncryptionKey = {
        let scalar = Array(SHA256.hash(data: Array("swift-efs fuzz p256 key".utf8)))
        let agreement = try! P256.KeyAgreement.PrivateKey(rawRepresentation: scalar)
        var sender = try! HPKE.Sender(
            recipientKey: agreement.publicKey, ciphersuite: .P256_SHA256_AES_GCM_256, info: Data(KeyLabels.hpkeWrapInfo))
        let sealed = try! sender.seal(fekBytes, authenticating: baseFileID.bytes)
        let entry = KeyEntry(
            algorithm: .hpkeP256, thumbprint: Thumbprint(bytes: [UInt8](repeating: 0, count: 20))!,
            certificateDER: [0x30, 0x00], wrappedKey: Array(sender.encapsulatedKey) + Array(sealed))
        let key = try! UserPrivateKey.parse(der: Array(agreement.derRepresentation))
        let fek = try! key.unwrap(entry, fileID: baseFileID)
        // The harness's MAC computation must agree with the library's, or every fix-up would be useless.
        let record = SizeRecord(generation: 7, plaintextSize: 4_097, isSparse: true)
        let encoded = record.encoded(fek)
        precondition(Array(encoded[32..<64]) == sizeRecordMAC(fileID: baseFileID.bytes, body: Array(encoded[0..<32])))
        return fek
    }()

    /// The fixed FEK bound to `fileID` (as a file's FEK is bound to its header's file id).
    public static func fek(for fileID: FileID) -> FileEncryptionKey { base.rebinding(to: fileID) }

    /// The fixed FEK bound to the file id in `bytes` (16 bytes), or to a fixed id when they are not a valid one.
    public static func fek(forFileIDBytes bytes: some Collection<UInt8>) -> FileEncryptionKey {
        if let id = try? FileID(bytes: bytes) { return fek(for: id) }
        return base
    }

    static func subkey(_ fileID: [UInt8], _ info: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: fekBytes), salt: fileID, info: info, outputByteCount: 32)
    }

    /// `Documentation/file-format.md` §3: HMAC-SHA256(size key, "EFS1SIZE" ‖ file id ‖ bytes 0..<32).
    public static func sizeRecordMAC(fileID: [UInt8], body: [UInt8]) -> [UInt8] {
        var h = HMAC<SHA256>(key: subkey(fileID, KeyLabels.sizeRecord))
        h.update(data: KeyLabels.sizeRecordMACPrefix)
        h.update(data: fileID)
        h.update(data: body)
        return Array(h.finalize())
    }

    /// `Documentation/file-format.md` §4.2: HMAC-SHA256(metadata key, "EFS1META" ‖ all bytes before the MAC).
    public static func metadataMAC(fileID: [UInt8], body: [UInt8]) -> [UInt8] {
        var h = HMAC<SHA256>(key: subkey(fileID, KeyLabels.metadataMAC))
        h.update(data: KeyLabels.metadataMACPrefix)
        h.update(data: body)
        return Array(h.finalize())
    }
}

// MARK: - Fix-ups

/// Recomputes checksums and MACs in place. Each one does nothing when the bytes are too short to hold the field.
public enum FixUp {
    static func le32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24
    }

    /// File header (§2) at `offset`: checksum of bytes 0..<48 into 48..<64.
    public static func headerChecksum(_ b: inout [UInt8], at offset: Int = 0) {
        guard b.count >= offset + 64 else { return }
        let sum = Array(SHA256.hash(data: b[offset..<(offset + 48)]))
        b.replaceSubrange((offset + 48)..<(offset + 64), with: sum[0..<16])
    }

    /// Metadata slot (§4.1) at `offset`: checksum of bytes 0..<16 and the body into 16..<32.
    public static func slotChecksum(_ b: inout [UInt8], at offset: Int) {
        guard b.count >= offset + 32 else { return }
        let length = le32(b, offset + 4)
        guard length <= b.count - offset - 32 else { return }
        var h = SHA256()
        h.update(data: b[offset..<(offset + 16)])
        h.update(data: b[(offset + 32)..<(offset + 32 + length)])
        b.replaceSubrange((offset + 16)..<(offset + 32), with: Array(h.finalize())[0..<16])
    }

    /// Size record (§3) at `offset`, keyed with ``FuzzKey`` for `fileID`. An all-zero record is left empty.
    public static func sizeRecordMAC(_ b: inout [UInt8], at offset: Int, fileID: [UInt8]) {
        guard b.count >= offset + 64, b[offset..<(offset + 64)].contains(where: { $0 != 0 }) else { return }
        let mac = FuzzKey.sizeRecordMAC(fileID: fileID, body: Array(b[offset..<(offset + 32)]))
        b.replaceSubrange((offset + 32)..<(offset + 64), with: mac)
    }

    /// Metadata body (§4.2) in `range`: walks the DDF/DRF entries as far as they are well formed and sets each
    /// 20-byte thumbprint to the SHA-1 of its certificate.
    public static func thumbprints(_ b: inout [UInt8], in range: Range<Int>) {
        guard range.count >= 24 + 32 else { return }
        let end = range.upperBound - 32
        let entries = (Int(b[range.lowerBound + 20]) | Int(b[range.lowerBound + 21]) << 8)
            + (Int(b[range.lowerBound + 22]) | Int(b[range.lowerBound + 23]) << 8)
        var p = range.lowerBound + 24
        for _ in 0..<min(entries, 1_000) {
            guard p + 2 <= end else { return }
            let tlen = Int(b[p + 1])
            let tp = p + 2
            guard tp + tlen + 4 <= end else { return }
            let clen = le32(b, tp + tlen)
            let cert = tp + tlen + 4
            guard clen <= end - cert, cert + clen + 2 <= end else { return }
            if tlen == 20 {
                b.replaceSubrange(tp..<(tp + 20), with: Array(Insecure.SHA1.hash(data: b[cert..<(cert + clen)])))
            }
            let wlen = Int(b[cert + clen]) | Int(b[cert + clen + 1]) << 8
            p = cert + clen + 2 + wlen
        }
    }

    /// Metadata body (§4.2) in `range`: the MAC in its last 32 bytes, keyed with ``FuzzKey`` for its file id.
    public static func metadataMAC(_ b: inout [UInt8], in range: Range<Int>) {
        guard range.count >= 24 + 32 else { return }
        let fileID = Array(b[(range.lowerBound + 4)..<(range.lowerBound + 20)])
        let mac = FuzzKey.metadataMAC(fileID: fileID, body: Array(b[range.lowerBound..<(range.upperBound - 32)]))
        b.replaceSubrange((range.upperBound - 32)..<range.upperBound, with: mac)
    }

    /// A raw metadata payload (`Documentation/raw-stream-format.md` §3: header, two size records, one slot):
    /// every check value, innermost first, as selected by `mode` (``Mode``).
    public static func rawMetadata(_ b: inout [UInt8], mode: Mode) {
        if b.count >= 192 + 32 {
            let length = le32(b, 192 + 4)
            if length <= b.count - 224 {
                let body = 224..<(224 + length)
                if mode.contains(.thumbprints) { thumbprints(&b, in: body) }
                if mode.contains(.macs) { metadataMAC(&b, in: body) }
            }
            if mode.contains(.checksums) { slotChecksum(&b, at: 192) }
        }
        if mode.contains(.macs), b.count >= 192 {
            let fileID = Array(b[16..<32])
            sizeRecordMAC(&b, at: 64, fileID: fileID)
            sizeRecordMAC(&b, at: 128, fileID: fileID)
        }
        if mode.contains(.checksums) { headerChecksum(&b) }
    }

    /// The mode byte that starts the input of the file-format targets.
    public struct Mode: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Recompute the unkeyed checksums (file header, metadata slot).
        public static let checksums = Mode(rawValue: 1)
        /// Recompute the keyed MACs (size records, metadata) with ``FuzzKey``.
        public static let macs = Mode(rawValue: 2)
        /// Set each key entry's thumbprint to the SHA-1 of its certificate.
        public static let thumbprints = Mode(rawValue: 4)
    }
}

// MARK: - Splitting

/// SplitMix64: a small deterministic generator for split points, seeded from the input.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
