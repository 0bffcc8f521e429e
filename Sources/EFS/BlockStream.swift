// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Dispatch
import EFSCore
import EFSSystem
import Synchronization
import SystemPackage

/// Whole-file encryption and decryption between two descriptors, in chunks of blocks sealed or opened on all
/// cores. Memory use is bounded by the chunk size, whatever the file size.
enum BlockStream {
    /// Blocks per chunk: 1024 × 4 KiB = 4 MiB of plaintext.
    static let blocksPerChunk = 1_024

    static var workers: Int { max(1, min(8, Sys.processorCount)) }

    /// Encrypts `size` plaintext bytes of `src` (from offset 0) into the data region of `dst`.
    static func encrypt(from src: FileDescriptor, size: UInt64, to dst: FileDescriptor, dataOffset: Int64, cipher: ContentCipher, path: FilePath) throws(EFSError) {
        let bs = UInt64(ContentCipher.blockSize)
        let sbs = ContentCipher.storedBlockSize
        var block: UInt64 = 0
        let totalBlocks = (size + bs - 1) / bs
        while block < totalBlocks {
            let n = Int(min(UInt64(blocksPerChunk), totalBlocks - block))
            let plainStart = block * bs
            let plainLen = Int(min(size - plainStart, UInt64(n) * bs))
            let plain = try mapErrors(path, "cannot read") { try Sys.pread(src, count: plainLen, at: Int64(plainStart)) }
            guard plain.count == plainLen else {
                throw EFSError(.ioError, "\(path): the file shrank while it was being encrypted")
            }
            let storedLen = Int(ContentCipher.storedLength(forPlaintextSize: UInt64(plainLen)))
            var out = [UInt8](repeating: 0, count: storedLen)
            let first = block
            out.withUnsafeMutableBytes { outRaw in
                // Invariant: worker w writes only stored blocks [lo, hi) of this chunk, which are disjoint.
                let base = UnsafeMutableRawBufferPointerBox(outRaw)
                parallelRanges(n) { lo, hi in
                    for i in lo..<hi {
                        let pFrom = i * ContentCipher.blockSize
                        let pTo = min(plainLen, pFrom + ContentCipher.blockSize)
                        let sealed = cipher.seal(block: first + UInt64(i), plain[pFrom..<pTo])
                        base.copy(sealed, to: i * sbs)
                    }
                }
            }
            try mapErrors(path, "cannot write") {
                try Sys.pwriteAll(dst, out, at: dataOffset + Int64(block * UInt64(sbs)))
            }
            block += UInt64(n)
        }
    }

    /// Decrypts the plaintext `0..<size` of an encrypted file into `dst` (from offset 0).
    static func decrypt(_ file: EncryptedFile, to dst: FileDescriptor, path: FilePath) throws(EFSError) {
        let size = file.size
        var offset: UInt64 = 0
        let chunk = UInt64(blocksPerChunk * ContentCipher.blockSize)
        while offset < size {
            let plain = try file.readParallel(at: offset, count: Int(min(chunk, size - offset)))
            try mapErrors(path, "cannot write") { try Sys.pwriteAll(dst, plain, at: Int64(offset)) }
            offset += UInt64(plain.count)
        }
    }

    /// Calls `body(lo, hi)` for contiguous slices of `0..<count` on up to ``workers`` threads.
    static func parallelRanges(_ count: Int, _ body: @Sendable (Int, Int) -> Void) {
        let w = count >= 64 ? workers : 1
        if w == 1 {
            body(0, count)
            return
        }
        let per = (count + w - 1) / w
        DispatchQueue.concurrentPerform(iterations: w) { k in
            let lo = k * per
            let hi = min(count, lo + per)
            if lo < hi { body(lo, hi) }
        }
    }
}

/// Lets disjoint slices of one output buffer be filled from several threads.
struct UnsafeMutableRawBufferPointerBox: @unchecked Sendable {
    let raw: UnsafeMutableRawBufferPointer
    init(_ raw: UnsafeMutableRawBufferPointer) { self.raw = raw }
    func copy(_ bytes: [UInt8], to offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= raw.count)
        bytes.withUnsafeBytes { src in
            // Invariant: checked above that the destination range lies inside `raw`.
            raw.baseAddress!.advanced(by: offset).copyMemory(from: src.baseAddress!, byteCount: src.count)
        }
    }
}

extension EncryptedFile {
    /// Like ``read(at:count:)`` but opens the blocks on all cores. Used for whole-file decryption.
    func readParallel(at offset: UInt64, count: Int) throws(EFSError) -> [UInt8] {
        let bs = UInt64(ContentCipher.blockSize)
        precondition(offset % bs == 0)
        let (sizeRec, storedLen) = state.withLock { s in (s.sizeRecord, s.storedLength) }
        let end = min(sizeRec.plaintextSize, offset + UInt64(count))
        guard end > offset else { return [] }
        let first = offset / bs
        let blocks = Int((end - offset + bs - 1) / bs)
        let sbs = UInt64(ContentCipher.storedBlockSize)
        let storedStart = first * sbs
        let storedEnd = min(storedLen, (first + UInt64(blocks)) * sbs)
        let stored = try mapErrors(path, "cannot read") {
            try Sys.pread(fd, count: Int(storedEnd - storedStart), at: dataOffset + Int64(storedStart))
        }
        guard UInt64(stored.count) == storedEnd - storedStart else {
            throw EFSError(.authenticationFailed, "\(path?.string ?? "file"): the file is truncated")
        }
        let plainLen = Int(end - offset)
        var out = [UInt8](repeating: 0, count: plainLen)
        let failed = Mutex<UInt64?>(nil)
        let cipher = self.cipher
        out.withUnsafeMutableBytes { outRaw in
            let box = UnsafeMutableRawBufferPointerBox(outRaw)
            BlockStream.parallelRanges(blocks) { lo, hi in
                for i in lo..<hi {
                    let sFrom = i * Int(sbs)
                    let sTo = min(stored.count, sFrom + Int(sbs))
                    guard sFrom < sTo, let plain = try? cipher.open(block: first + UInt64(i), stored[sFrom..<sTo], allowHole: sizeRec.isSparse) else {
                        failed.withLock { $0 = min($0 ?? .max, first + UInt64(i)) }
                        return
                    }
                    let pFrom = i * ContentCipher.blockSize
                    let take = min(plain.count, plainLen - pFrom)
                    guard take >= 0, take == min(ContentCipher.blockSize, plainLen - pFrom) else {
                        failed.withLock { $0 = min($0 ?? .max, first + UInt64(i)) }
                        return
                    }
                    box.copy(Array(plain[0..<take]), to: pFrom)
                }
            }
        }
        if let b = failed.withLock({ $0 }) {
            throw EFSError(.authenticationFailed, "\(path?.string ?? "file"): authentication failed in bytes \(b * bs)..<\((b + 1) * bs): the data was modified or does not belong to this file")
        }
        return out
    }
}
