// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// The authenticated plaintext size of a file. Two copies live at offsets 64 and 128; the valid one with the
/// higher generation wins, so a torn write of one copy leaves the other.
///
/// ```
/// 0   8  generation (u64; 0 = never written)
/// 8   8  plaintext size (u64)
/// 16  4  flags (bit 0: sparse — all-zero stored blocks read as holes)
/// 20  12 reserved, zero
/// 32  32 HMAC-SHA256(size key, "EFS1SIZE" ‖ file id ‖ bytes 0..<32)
/// ```
/// `Documentation/file-format.md` §3.
public struct SizeRecord: Hashable, Sendable {
    public static let size = 64
    public static let flagSparse: UInt32 = 1
    public static let knownFlags: UInt32 = flagSparse

    public var generation: UInt64
    public var plaintextSize: UInt64
    public var isSparse: Bool

    public init(generation: UInt64, plaintextSize: UInt64, isSparse: Bool) {
        self.generation = generation
        self.plaintextSize = plaintextSize
        self.isSparse = isSparse
    }

    /// Which of the two copies a record of this generation is written to.
    public var copyIndex: Int { Int(generation % 2) }

    func body() -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.write(generation)
        w.write(plaintextSize)
        w.write(isSparse ? Self.flagSparse : 0)
        w.writeZeros(12)
        return w.bytes
    }

    public func encoded(_ fek: FileEncryptionKey) -> [UInt8] {
        let b = body()
        return b + fek.mac(fek.sizeKey, KeyLabels.sizeRecordMACPrefix, fek.fileID.bytes, b)
    }

    /// Decodes one copy. Returns nil for a never-written copy (all zero). Throws on a bad MAC or bad fields.
    public static func decode(_ bytes: some Collection<UInt8>, _ fek: FileEncryptionKey) throws(FormatError) -> SizeRecord? {
        let all = Array(bytes)
        guard all.count == size else { throw .truncated("size record") }
        if all.allSatisfy({ $0 == 0 }) { return nil }
        let b = Array(all[0..<32])
        let mac = fek.mac(fek.sizeKey, KeyLabels.sizeRecordMACPrefix, fek.fileID.bytes, b)
        guard constantTimeEquals(mac, all[32..<64]) else { throw .authenticationFailed }
        var r = ByteReader(b)
        let gen = try r.readUInt64("generation")
        let sz = try r.readUInt64("plaintext size")
        let flags = try r.readUInt32("size flags")
        guard gen > 0 else { throw .malformed("size record generation is zero") }
        guard flags & ~knownFlags == 0 else { throw FormatError(.unknownFlags, "size record has unknown flags") }
        guard sz <= Limits.maximumPlaintextSize else {
            throw .limitExceeded("plaintext size", value: sz, maximum: Int(Limits.maximumPlaintextSize))
        }
        return SizeRecord(generation: gen, plaintextSize: sz, isSparse: flags & flagSparse != 0)
    }

    /// Picks the current record from the two copies.
    ///
    /// Valid states are: copy 0 empty and copy 1 at generation 1 (a new file), or the two copies at generations
    /// g and g − 1. Anything else — a bad MAC on either copy, an emptied copy, generations that are not adjacent —
    /// is an ``FormatError/authenticationFailed``: the records are 64-byte aligned writes inside one sector, so a
    /// crash cannot tear them, and a silent fall-back would let an attacker roll the size back.
    public static func current(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>, _ fek: FileEncryptionKey) throws(FormatError) -> SizeRecord {
        let ra = try decode(a, fek)
        let rb = try decode(b, fek)
        switch (ra, rb) {
        case (nil, .some(let r)) where r.generation == 1 && r.copyIndex == 1:
            return r
        case (.some(let x), .some(let y)) where max(x.generation, y.generation) - min(x.generation, y.generation) == 1
            && x.copyIndex == 0 && y.copyIndex == 1:
            return x.generation > y.generation ? x : y
        default:
            throw .authenticationFailed
        }
    }
}
