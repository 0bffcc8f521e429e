// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream

/// A sans-I/O decryptor of one contiguous run of Windows EFS ciphertext: feed ciphertext in chunks of any size and
/// get the plaintext of every completed 512-byte unit back, cut to the run's size, with the bytes beyond the valid
/// data length forced to zero (`windows-efs-metadata.md` §4.5; MS-EFSR 2.2.3.3 "Bytes beyond VDL MUST be zero after
/// decryption").
///
/// ```swift
/// var d = try WindowsDataDecryptor(cipher: cipher, size: 621)
/// var out = try d.decrypt(firstChunk)
/// out += try d.decrypt(secondChunk)
/// try d.finish()
/// ```
public struct WindowsDataDecryptor: Sendable {
    let cipher: WindowsDataCipher
    /// Stream offset of the first unit.
    public let startOffset: UInt64
    /// Plaintext bytes in the run.
    public let size: UInt64
    /// Plaintext bytes, from the run's start, that are valid data; the rest of `size` comes out as zeros.
    public let validDataLength: UInt64
    /// Ciphertext bytes expected: `size` rounded up to 512.
    public let expectedCiphertext: UInt64
    var pending: [UInt8] = []
    /// Ciphertext bytes decrypted so far (a multiple of 512).
    public private(set) var decrypted: UInt64 = 0

    /// - Parameters:
    ///   - startOffset: stream byte offset of the run's first unit (a multiple of 512); it determines the IVs.
    ///   - size: plaintext bytes in the run.
    ///   - validDataLength: valid bytes from the start of the run (≤ `size`); nil means all of `size`.
    /// - Throws: `.malformed` for an unaligned offset or a VDL above the size, `.limitExceeded` on overflow.
    public init(
        cipher: WindowsDataCipher, startOffset: UInt64 = 0, size: UInt64, validDataLength: UInt64? = nil
    ) throws(FormatError) {
        guard startOffset % UInt64(WindowsEFS.unitSize) == 0 else {
            throw FormatError(.malformed, "a data run starts at \(startOffset), not a multiple of 512")
        }
        guard let rounded = WindowsEFS.roundedToUnit(size), !startOffset.addingReportingOverflow(rounded).overflow,
            size <= Limits.maximumPlaintextSize
        else { throw FormatError(.limitExceeded, "a data run of \(size) bytes at \(startOffset) is too large") }
        let vdl = validDataLength ?? size
        guard vdl <= size else {
            throw FormatError(.malformed, "the valid data length \(vdl) is above the size \(size)")
        }
        self.cipher = cipher
        self.startOffset = startOffset
        self.size = size
        self.validDataLength = vdl
        self.expectedCiphertext = rounded
    }

    /// Whether all expected ciphertext has been decrypted.
    public var isComplete: Bool { decrypted == expectedCiphertext }

    /// Decrypts the completed units of `chunk` (with any bytes held back from earlier calls).
    ///
    /// - Throws: `.trailingData` when more ciphertext arrives than `size` needs; cipher errors.
    public mutating func decrypt(_ chunk: some Collection<UInt8>) throws(FormatError) -> [UInt8] {
        let remaining = expectedCiphertext - decrypted - UInt64(pending.count)
        guard UInt64(chunk.count) <= remaining else {
            throw FormatError(
                .trailingData,
                "\(UInt64(chunk.count) - remaining) ciphertext bytes beyond the \(expectedCiphertext) that \(size) bytes of data need"
            )
        }
        pending.append(contentsOf: chunk)
        let unit = WindowsEFS.unitSize
        let whole = pending.count / unit * unit
        guard whole > 0 else { return [] }
        var plain = try cipher.decrypt(pending[0..<whole], offset: startOffset + decrypted)
        pending.removeFirst(whole)
        // Cut to the run's size and zero what lies beyond the valid data length. Positions are run-relative.
        let first = decrypted
        decrypted += UInt64(whole)
        if decrypted > validDataLength {
            let zeroFrom = validDataLength > first ? Int(validDataLength - first) : 0
            for i in zeroFrom..<plain.count { plain[i] = 0 }
        }
        if decrypted > size { plain.removeLast(Int(decrypted - size)) }
        return plain
    }

    /// Checks that the run is complete.
    ///
    /// - Throws: `.truncated` when less ciphertext arrived than `size` needs.
    public func finish() throws(FormatError) {
        guard pending.isEmpty, decrypted == expectedCiphertext else {
            throw FormatError(
                .truncated,
                "the ciphertext ends after \(decrypted + UInt64(pending.count)) of \(expectedCiphertext) bytes")
        }
    }
}

/// Plaintext at a stream offset. Bytes between extents (sparse holes) are zeros.
public struct WindowsPlaintextExtent: Sendable, Hashable {
    public var offset: UInt64
    public var bytes: [UInt8]

    public init(offset: UInt64, bytes: [UInt8]) {
        self.offset = offset
        self.bytes = bytes
    }
}

/// A sans-I/O decryptor of the data segments of one raw-stream stream (MS-EFSR 2.2.3.3; `raw-stream-format.md`
/// §3.4): feed each segment as ``RawStreamDecoder`` returns it, get plaintext extents back.
///
/// The segment's data lies at StartingFileOffset; BytesWithinStreamSize bytes of it are the stream's, and those
/// beyond BytesWithinVDL come out as zeros. With one data block (what Windows writes for non-sparse files) the
/// block is the whole segment's ciphertext, BytesWithinStreamSize rounded up to 512. With several blocks, block *i*
/// is data unit *i* (2^DataUnitShift bytes) of the segment, and a block size of 0 is a hole; see
/// `Documentation/windows-format.md` §5 for this reading of the spec, which no capture has confirmed yet.
///
/// ```swift
/// var d = WindowsSegmentDecryptor(cipher: cipher)
/// for (header, payload) in segments { for extent in try d.decrypt(header, payload: payload) { write(extent) } }
/// let size = d.streamSize
/// ```
public struct WindowsSegmentDecryptor: Sendable {
    let cipher: WindowsDataCipher
    /// The stream size so far: the end of the furthest segment.
    public private(set) var streamSize: UInt64 = 0
    var segments = 0

    public init(cipher: WindowsDataCipher) { self.cipher = cipher }

    /// One data block of a segment: where its plaintext lies in the stream, and its ciphertext size (0: a hole).
    public struct Block: Sendable, Hashable {
        public var offset: UInt64
        public var length: UInt64
        public var ciphertextSize: UInt32
    }

    /// Checks a segment header on its own and returns its blocks (no key needed; `inspect` uses it too).
    ///
    /// - Throws: `.malformed` when the offset is not a multiple of 512, BytesWithinVDL is above
    ///   BytesWithinStreamSize, or the block sizes do not describe BytesWithinStreamSize bytes as the type
    ///   documentation says.
    public static func blocks(of h: DataSegmentHeader) throws(FormatError) -> [Block] {
        let start = h.startingFileOffset
        let n = UInt64(h.bytesWithinStreamSize)
        guard start % UInt64(WindowsEFS.unitSize) == 0 else {
            throw FormatError(.malformed, "a segment starts at \(start), not a multiple of 512")
        }
        guard UInt64(h.bytesWithinVDL) <= n else {
            throw FormatError(.malformed, "BytesWithinVDL \(h.bytesWithinVDL) is above BytesWithinStreamSize \(n)")
        }
        guard !start.addingReportingOverflow(n + UInt64(WindowsEFS.unitSize)).overflow else {
            throw FormatError(.limitExceeded, "a segment at \(start) overflows")
        }
        var ranges: [(offset: UInt64, length: UInt64)] = []
        if h.dataBlockSizes.count == 1 {
            ranges = [(0, n)]
        } else {
            guard h.dataUnitShift >= 9, h.dataUnitShift <= 31 else {
                throw FormatError(
                    .malformed,
                    "a segment with \(h.dataBlockSizes.count) data blocks has DataUnitShift \(h.dataUnitShift), outside 9…31"
                )
            }
            let unit = UInt64(1) << UInt64(h.dataUnitShift)
            let count = (n + unit - 1) / unit
            guard count == UInt64(h.dataBlockSizes.count) else {
                throw FormatError(
                    .malformed,
                    "a segment of \(n) bytes in \(unit)-byte data units has \(h.dataBlockSizes.count) blocks, not \(count)"
                )
            }
            for i in 0..<count { ranges.append((i * unit, min(unit, n - i * unit))) }
        }
        var out: [Block] = []
        for (i, size) in h.dataBlockSizes.enumerated() {
            let r = ranges[i]
            // 0 is a hole: zeros, no ciphertext. Otherwise the block is the data rounded up to 512 (§4.5).
            guard size == 0 || UInt64(size) == WindowsEFS.roundedToUnit(r.length) else {
                throw FormatError(
                    .malformed,
                    "DataBlockSizes[\(i)] is \(size); \(r.length) bytes of data need \(WindowsEFS.roundedToUnit(r.length) ?? 0)"
                )
            }
            out.append(Block(offset: start + r.offset, length: r.length, ciphertextSize: size))
        }
        return out
    }

    /// Decrypts one segment.
    ///
    /// - Throws: the errors of ``blocks(of:)``; `.malformed` when the segment overlaps an earlier one or the
    ///   payload length differs from the block sizes' sum.
    public mutating func decrypt(
        _ h: DataSegmentHeader, payload: some Collection<UInt8>
    ) throws(FormatError) -> [WindowsPlaintextExtent] {
        let blocks = try Self.blocks(of: h)
        let start = h.startingFileOffset
        guard segments == 0 || start >= streamSize else {
            throw FormatError(.malformed, "a segment at \(start) overlaps the previous one (ending at \(streamSize))")
        }
        guard UInt64(payload.count) == h.payloadLength else {
            throw FormatError(
                .malformed,
                "a segment holds \(payload.count) data bytes but its block sizes add up to \(h.payloadLength)")
        }
        let bytes = Array(payload)
        let vdlEnd = start + UInt64(h.bytesWithinVDL)
        var extents: [WindowsPlaintextExtent] = []
        var cursor = 0
        for b in blocks where b.ciphertextSize > 0 {
            var d = try WindowsDataDecryptor(
                cipher: cipher, startOffset: b.offset, size: b.length,
                validDataLength: vdlEnd > b.offset ? min(vdlEnd - b.offset, b.length) : 0)
            let plain = try d.decrypt(bytes[cursor..<(cursor + Int(b.ciphertextSize))])
            try d.finish()
            cursor += Int(b.ciphertextSize)
            if let last = extents.last, last.offset + UInt64(last.bytes.count) == b.offset {
                extents[extents.count - 1].bytes += plain
            } else if !plain.isEmpty {
                extents.append(WindowsPlaintextExtent(offset: b.offset, bytes: plain))
            }
        }
        segments += 1
        streamSize = max(streamSize, start + UInt64(h.bytesWithinStreamSize))
        return extents
    }
}
