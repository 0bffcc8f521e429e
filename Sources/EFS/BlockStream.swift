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
    ///
    /// A two-stage pipeline over two pairs of reused buffers: while a writer thread writes chunk k (and asks the
    /// kernel to start writing it back, so the final fsync has little left to do), this thread reads chunk k + 1
    /// and seals it on all cores. Memory stays at four chunk buffers whatever the file size.
    static func encrypt(from src: FileDescriptor, size: UInt64, to dst: FileDescriptor, dataOffset: Int64, cipher: ContentCipher, path: FilePath) throws(EFSError) {
        let bs = UInt64(ContentCipher.blockSize)
        let sbs = ContentCipher.storedBlockSize
        let totalBlocks = (size + bs - 1) / bs
        let slots = PipelineSlot.pair(forPlaintextSize: size, wholeBlocks: false)
        let writer = DispatchQueue(label: "swift-efs.encrypt.writer")
        let failure = FirstFailure()
        var block: UInt64 = 0
        var k = 0
        defer {
            // Let every queued write finish before the buffers go away.
            writer.sync {}
        }
        while block < totalBlocks {
            if let e = failure.error { throw e }
            let slot = slots[k % 2]
            slot.free.wait()  // its previous write has finished
            let n = Int(min(UInt64(blocksPerChunk), totalBlocks - block))
            let plainStart = block * bs
            let plainLen = Int(min(size - plainStart, UInt64(n) * bs))
            let got: Int
            do { got = try slot.read(src, count: plainLen, at: Int64(plainStart)) } catch {
                slot.free.signal()
                throw EFSError.system(error, "cannot read", path)
            }
            guard got == plainLen else {
                slot.free.signal()
                throw EFSError(.ioError, "\(path): the file shrank while it was being encrypted")
            }
            let storedLen = Int(ContentCipher.storedLength(forPlaintextSize: UInt64(plainLen)))
            slot.seal(cipher, firstBlock: block, blocks: n, plainLength: plainLen)
            let at = dataOffset + Int64(block * UInt64(sbs))
            writeBehind(on: writer, \.stored, count: storedLen, to: dst, at: at, releasing: slot, failure: failure, path: path)
            block += UInt64(n)
            k += 1
        }
        writer.sync {}
        if let e = failure.error { throw e }
    }

    /// Decrypts the plaintext `0..<size` of an encrypted file into `dst` (from offset 0).
    ///
    /// The mirror of ``encrypt(from:size:to:dataOffset:cipher:path:)``: while the writer thread writes chunk k, this
    /// thread reads chunk k + 1 and opens it on all cores, into the same two reused buffer pairs. Nothing is
    /// allocated per chunk, so the kernel is not asked for (and does not zero) fresh memory 8 MiB at a time.
    static func decrypt(_ file: EncryptedFile, to dst: FileDescriptor, path: FilePath) throws(EFSError) {
        let size = file.size
        let chunk = UInt64(blocksPerChunk * ContentCipher.blockSize)
        let slots = PipelineSlot.pair(forPlaintextSize: size, wholeBlocks: true)
        let writer = DispatchQueue(label: "swift-efs.decrypt.writer")
        let failure = FirstFailure()
        defer { writer.sync {} }
        var offset: UInt64 = 0
        var k = 0
        while offset < size {
            if let e = failure.error { throw e }
            let slot = slots[k % 2]
            slot.free.wait()
            let n: Int
            do throws(EFSError) {
                n = try file.openParallel(at: offset, count: Int(min(chunk, size - offset)), stored: &slot.stored, into: &slot.plain)
            } catch {
                slot.free.signal()
                throw error
            }
            let at = Int64(offset)
            writeBehind(on: writer, \.plain, count: n, to: dst, at: at, releasing: slot, failure: failure, path: path)
            offset += UInt64(n)
            k += 1
        }
        writer.sync {}
        if let e = failure.error { throw e }
    }

    /// Queues the write of `slot[keyPath: buffer][0..<count]` at `offset` on `writer`, then asks the kernel to start
    /// writing it back (so the final fsync has little left to do) and frees `slot`. The first failure is kept in
    /// `failure`. The buffer is reached through the slot, not captured, so no reference to it outlives the write
    /// (one would make the next fill of the slot copy 4 MiB).
    private static func writeBehind(on writer: DispatchQueue, _ buffer: KeyPath<PipelineSlot, [UInt8]> & Sendable, count: Int, to dst: FileDescriptor, at offset: Int64,
                                    releasing slot: PipelineSlot, failure: FirstFailure, path: FilePath) {
        writer.async {
            defer { slot.free.signal() }
            do throws(Errno) { try Sys.pwriteAll(dst, slot[keyPath: buffer][0..<count], at: offset) } catch {
                failure.record(EFSError.system(error, "cannot write", path))
                return
            }
            Sys.startWriteback(dst, offset: offset, length: Int64(count))
        }
    }

    /// The stored form of consecutive blocks from `first` whose plaintexts follow each other in `plaintext` (each
    /// 4096 bytes but the last): nonces from one random stream per run, and both cores for long runs (a 1 MiB
    /// write through the mount is 256 blocks).
    static func seal(_ cipher: ContentCipher, first: UInt64, plaintext: [UInt8]) -> [UInt8] {
        let n = (plaintext.count + ContentCipher.blockSize - 1) / ContentCipher.blockSize
        var out = [UInt8](repeating: 0, count: plaintext.count + n * ContentCipher.overhead)
        plaintext.withUnsafeBytes { inRaw in
            out.withUnsafeMutableBytes { outRaw in seal(cipher, first: first, plaintext: inRaw, into: outRaw) }
        }
        return out
    }

    /// Seals the blocks of `plaintext` (4096 bytes each but the last) into `output` (their stored length) on up to
    /// ``workers`` threads.
    static func seal(_ cipher: ContentCipher, first: UInt64, plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        let bs = ContentCipher.blockSize, sbs = ContentCipher.storedBlockSize
        let n = (plaintext.count + bs - 1) / bs
        // Invariant: worker ranges [lo, hi) are disjoint, so each writes its own slice of `output`.
        let input = UnsafeRawBufferPointerBox(plaintext)
        let out = UnsafeMutableRawBufferPointerBox(output)
        parallelRanges(n) { lo, hi in
            let pFrom = lo * bs, pTo = min(input.raw.count, hi * bs)
            let sFrom = lo * sbs, sTo = sFrom + (pTo - pFrom) + (hi - lo) * ContentCipher.overhead
            cipher.sealBlocks(first: first + UInt64(lo), plaintext: UnsafeRawBufferPointer(rebasing: input.raw[pFrom..<pTo]),
                              into: UnsafeMutableRawBufferPointer(rebasing: out.raw[sFrom..<sTo]))
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

/// The first error of a pipeline's writer thread.
final class FirstFailure: Sendable {
    private let first = Mutex<EFSError?>(nil)
    var error: EFSError? { first.withLock { $0 } }
    func record(_ e: EFSError) { first.withLock { $0 = $0 ?? e } }
}

/// One stage buffer pair of the encryption pipeline. `free` is signalled when its last write has finished; only
/// the thread that holds the slot (after `free.wait()`) touches the buffers, so the unchecked Sendable is sound.
final class PipelineSlot: @unchecked Sendable {
    var plain: [UInt8]
    var stored: [UInt8]
    let free = DispatchSemaphore(value: 1)

    init(plain: Int, stored: Int) {
        self.plain = [UInt8](repeating: 0, count: plain)
        self.stored = [UInt8](repeating: 0, count: stored)
    }

    /// The two slots of a pipeline over `size` plaintext bytes: one chunk each, or less for a smaller file, so that
    /// a small file does not pay for zeroing four 4 MiB buffers. `wholeBlocks` rounds the plaintext buffer up to
    /// whole blocks (what ``EncryptedFile/openParallel(at:count:stored:into:)`` fills).
    static func pair(forPlaintextSize size: UInt64, wholeBlocks: Bool) -> [PipelineSlot] {
        let bs = UInt64(ContentCipher.blockSize)
        let blocks = min(UInt64(BlockStream.blocksPerChunk), (size + bs - 1) / bs)
        let plain = wholeBlocks ? Int(blocks * bs) : Int(min(blocks * bs, size))
        let stored = Int(blocks) * ContentCipher.storedBlockSize
        return [PipelineSlot(plain: plain, stored: stored), PipelineSlot(plain: plain, stored: stored)]
    }

    func read(_ fd: FileDescriptor, count: Int, at offset: Int64) throws(Errno) -> Int {
        if plain.count != count { plain = [UInt8](repeating: 0, count: count) }
        return try Sys.preadInto(fd, &plain, at: offset)
    }

    func seal(_ cipher: ContentCipher, firstBlock: UInt64, blocks n: Int, plainLength: Int) {
        let storedLength = plainLength + n * ContentCipher.overhead
        plain.withUnsafeBytes { inRaw in
            stored.withUnsafeMutableBytes { outRaw in
                BlockStream.seal(cipher, first: firstBlock, plaintext: UnsafeRawBufferPointer(rebasing: inRaw[0..<plainLength]),
                                 into: UnsafeMutableRawBufferPointer(rebasing: outRaw[0..<storedLength]))
            }
        }
    }
}

/// Lets several threads read one input buffer.
struct UnsafeRawBufferPointerBox: @unchecked Sendable {
    let raw: UnsafeRawBufferPointer
    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }
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
    /// Like ``read(at:count:)`` but opens the blocks on all cores. Used by fsck.
    func readParallel(at offset: UInt64, count: Int) throws(EFSError) -> [UInt8] {
        var stored: [UInt8] = []
        var plain: [UInt8] = []
        let n = try openParallel(at: offset, count: count, stored: &stored, into: &plain)
        plain.removeSubrange(n...)
        return plain
    }

    /// Reads the stored blocks behind plaintext `offset..<offset+count` (block-aligned `offset`) into `stored` and
    /// opens them on all cores into `plain`, growing either buffer only when it is too small. Returns the number of
    /// plaintext bytes now at the start of `plain` (less than `count` only at the end of the file).
    func openParallel(at offset: UInt64, count: Int, stored: inout [UInt8], into plain: inout [UInt8]) throws(EFSError) -> Int {
        let bs = UInt64(ContentCipher.blockSize)
        precondition(offset % bs == 0)
        let sbs = UInt64(ContentCipher.storedBlockSize)
        // Under the lock: the size and the stored bytes (a writer of this handle could otherwise be half way through
        // rewriting a block). Outside it: the decryption, so that readers in parallel use every core.
        let snapshot = try state.withLock { (s: inout State) throws(EFSError) -> (sizeRec: SizeRecord, end: UInt64, first: UInt64, blocks: Int, want: Int)? in
            try self.checkOpen(s)
            let end = min(s.sizeRecord.plaintextSize, offset + UInt64(count))
            guard end > offset else { return nil }
            let first = offset / bs
            let blocks = Int((end - offset + bs - 1) / bs)
            let storedStart = first * sbs
            let storedEnd = min(s.storedLength, (first + UInt64(blocks)) * sbs)
            let want = Int(storedEnd - storedStart)
            if stored.count < want { stored = [UInt8](repeating: 0, count: want) }
            // Room for whole blocks (the last stored block may hold more than the size needs); the caller cuts to size.
            if plain.count < blocks * ContentCipher.blockSize { plain = [UInt8](repeating: 0, count: blocks * ContentCipher.blockSize) }
            let got = try mapErrors(self.path, "cannot read") {
                try stored.withUnsafeMutableBytes { raw throws(Errno) in
                    try Sys.preadInto(self.fd, UnsafeMutableRawBufferPointer(rebasing: raw[0..<want]), at: self.dataOffset + Int64(storedStart))
                }
            }
            guard got == want else {
                throw EFSError(.authenticationFailed, "\(self.path?.string ?? "file"): the file is truncated")
            }
            return (s.sizeRecord, end, first, blocks, want)
        }
        guard let (sizeRec, end, first, blocks, want) = snapshot else { return 0 }
        let plainLen = Int(end - offset)
        let failed = Mutex<UInt64?>(nil)
        let cipher = self.cipher
        stored.withUnsafeBytes { inAll in
            plain.withUnsafeMutableBytes { outRaw in
                let input = UnsafeRawBufferPointerBox(UnsafeRawBufferPointer(rebasing: inAll[0..<want]))
                let box = UnsafeMutableRawBufferPointerBox(outRaw)
                BlockStream.parallelRanges(blocks) { lo, hi in
                    let sFrom = lo * Int(sbs)
                    let sTo = min(input.raw.count, hi * Int(sbs))
                    guard sFrom < sTo else {
                        failed.withLock { $0 = min($0 ?? .max, first + UInt64(lo)) }
                        return
                    }
                    let pFrom = lo * ContentCipher.blockSize
                    if let bad = cipher.openBlocks(
                        first: first + UInt64(lo), stored: UnsafeRawBufferPointer(rebasing: input.raw[sFrom..<sTo]),
                        into: UnsafeMutableRawBufferPointer(rebasing: box.raw[pFrom..<(hi * ContentCipher.blockSize)]),
                        allowHole: sizeRec.isSparse)
                    {
                        failed.withLock { $0 = min($0 ?? .max, first + UInt64(lo + bad)) }
                    }
                }
            }
        }
        // Every block up to the last must be whole, and the last must reach the end of the read.
        let expectedStored = UInt64(blocks - 1) * sbs + UInt64(ContentCipher.overhead) + (UInt64(plainLen) - UInt64(blocks - 1) * bs)
        if failed.withLock({ $0 }) == nil, UInt64(want) < expectedStored {
            failed.withLock { $0 = first + UInt64(blocks - 1) }
        }
        if let b = failed.withLock({ $0 }) {
            throw EFSError(.authenticationFailed, "\(path?.string ?? "file"): authentication failed in bytes \(b * bs)..<\((b + 1) * bs): the data was modified or does not belong to this file")
        }
        return plainLen
    }
}
