// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import EFSSystem
import EFSWindows
import SystemPackage

/// What decrypting Windows EFS data found (``WindowsInput/decrypt(key:toFile:)``).
public struct WindowsDecryption: Sendable {
    /// The data algorithm, from the FEK.
    public var algorithm: WindowsAlgorithm
    /// The DDF or DRF entry the key opened.
    public var entry: WindowsKeyEntry
    public var isRecovery: Bool
    public var index: Int
    /// Whether the input has an unnamed data stream (a directory's raw stream has none).
    public var hasDataStream = false
    /// The unnamed stream's size.
    public var size: UInt64 = 0
    /// The named streams' plaintext (each at most ``WindowsInput/maximumNamedStreamSize`` bytes).
    public var namedStreams: [(name: String, value: [UInt8])] = []
    /// Named streams that were not kept, and why.
    public var skippedStreams: [(name: String, reason: String)] = []

    /// DES-based data (3DES, DESX): weak by today's standards.
    public var isWeak: Bool { algorithm.isWeak }
}

extension WindowsInput {
    /// Largest named stream kept: what one encrypted extended attribute holds.
    public static let maximumNamedStreamSize = NamedStreamCipher.maximumValueSize

    /// Decrypts every stream with `key`. `data` gets the unnamed stream's plaintext as extents at increasing offsets
    /// (holes are left out); named streams are collected in the result.
    func decrypt(key: WindowsKey, data: (UInt64, [UInt8]) throws(EFSError) -> Void) throws(EFSError) -> WindowsDecryption {
        guard !isMetadataOnly else {
            throw EFSError(.invalidArgument, "\(path) is a bare $EFS: it holds no data (give the raw stream, or the efs_raw file with --efsinfo)")
        }
        let file = path
        var result: WindowsDecryption?
        var cipher: WindowsDataCipher?
        var current: RawStreamKind?
        var segments: WindowsSegmentDecryptor?
        var efsRaw: EfsRawDecryptor?
        var sequential: UInt64 = 0  // next offset of a stream read in order (Flag = 1, efs_raw)
        var named: [UInt8] = []
        var namedTooLarge: UInt64?

        func emit(_ offset: UInt64, _ bytes: [UInt8]) throws(EFSError) {
            guard !bytes.isEmpty, let current else { return }
            switch current {
            case .data: try data(offset, bytes)
            case .named:
                let end = offset + UInt64(bytes.count)
                guard namedTooLarge == nil, end <= UInt64(Self.maximumNamedStreamSize) else {
                    namedTooLarge = max(namedTooLarge ?? 0, end)
                    named = []
                    return
                }
                if Int(offset) > named.count { named += [UInt8](repeating: 0, count: Int(offset) - named.count) }
                named.replaceSubrange(Int(offset)..<min(named.count, Int(end)), with: bytes)
            case .metadata: break
            }
        }

        func endStream() {
            guard let current else { return }
            let size = max(segments?.streamSize ?? 0, sequential)
            switch current {
            case .data:
                result?.hasDataStream = true
                result?.size = size
            case .named(let n):
                if let big = namedTooLarge {
                    result?.skippedStreams.append(
                        (n, "\(max(big, size)) bytes, above the \(Self.maximumNamedStreamSize)-byte limit of an extended attribute"))
                } else {
                    if UInt64(named.count) < size { named += [UInt8](repeating: 0, count: Int(size) - named.count) }
                    result?.namedStreams.append((n, named))
                }
            case .metadata: break
            }
        }

        try walk { (r) throws(EFSError) in
            switch r {
            case .metadata(let bytes):
                let metadata = try Self.parseMetadata(bytes, file)
                let (fek, match) = try key.unwrap(metadata, path: file)
                do throws(FormatError) { cipher = try WindowsDataCipher(fek: fek) } catch {
                    throw windowsError(error, file, "file encryption key")
                }
                result = WindowsDecryption(
                    algorithm: fek.algorithm, entry: match.entry, isRecovery: match.isRecovery, index: match.index)
            case .stream(let kind, _):
                guard let cipher else { throw EFSError(.notExportFormat, "\(file): a stream before the metadata stream") }
                endStream()
                current = kind
                segments = WindowsSegmentDecryptor(cipher: cipher)
                efsRaw = self.isNTFS3G ? EfsRawDecryptor(cipher: cipher) : nil
                sequential = 0
                named = []
                namedTooLarge = nil
            case .segment(let h, let payload):
                if let h {
                    let extents: [WindowsPlaintextExtent]
                    do throws(FormatError) { extents = try segments!.decrypt(h, payload: payload) } catch {
                        throw EFSError(.notExportFormat, "\(file): malformed data segment: \(error.message)", cause: error)
                    }
                    for e in extents { try emit(e.offset, e.bytes) }
                } else {
                    // Flag = 1: the stream is stored without FEK encryption.
                    try emit(sequential, payload)
                    sequential += UInt64(payload.count)
                }
            case .efsRawChunk(let chunk):
                let plain: [UInt8]
                do throws(FormatError) { plain = try efsRaw!.decrypt(chunk) } catch {
                    throw EFSError(.notExportFormat, "\(file): malformed efs_raw: \(error.message)", cause: error)
                }
                try emit(sequential, plain)
                sequential += UInt64(plain.count)
            }
            return true
        }
        if efsRaw != nil {
            let plain: [UInt8]
            do throws(FormatError) { plain = try efsRaw!.finish() } catch {
                throw EFSError(.notExportFormat, "\(file): malformed efs_raw: \(error.message)", cause: error)
            }
            try emit(sequential, plain)
            sequential += UInt64(plain.count)
        }
        endStream()
        guard let result else { throw EFSError(.notExportFormat, "\(file): the raw stream has no metadata stream") }
        return result
    }

    var isMetadataOnly: Bool { if case .metadata = self { true } else { false } }
    var isNTFS3G: Bool { if case .ntfs3g = self { true } else { false } }

    /// Decrypts to a new file at `output`, created atomically (a temporary name beside it, fsync, rename) with
    /// `mode`; named streams become `user.NAME` extended attributes of it (those that cannot be set are reported in
    /// ``WindowsDecryption/skippedStreams``). An existing `output` is replaced.
    public func decrypt(key: WindowsKey, toFile output: FilePath, mode: UInt32 = 0o600) throws(EFSError) -> WindowsDecryption {
        try AtomicOutput.write(output, mode: mode, replace: true) { (fd) throws(EFSError) in
            var r = try decrypt(key: key) { (offset, bytes) throws(EFSError) in
                try mapErrors(output, "cannot write") { try Sys.pwriteAll(fd, bytes, at: Int64(offset)) }
            }
            try mapErrors(output, "cannot write") { try Sys.ftruncate(fd, Int64(r.size)) }
            var kept: [(name: String, value: [UInt8])] = []
            for (name, value) in r.namedStreams {
                do throws(Errno) {
                    try Sys.setXattr(fd, "user.\(name)", value)
                    kept.append((name, value))
                } catch {
                    r.skippedStreams.append((name, "cannot set the extended attribute user.\(name): \(error)"))
                }
            }
            r.namedStreams = kept
            return r
        }
    }

    /// Decrypts the unnamed stream to `output` in order (holes as zeros), e.g. standard output. Named streams are
    /// returned, not written.
    public func decrypt(key: WindowsKey, to output: FileDescriptor) throws(EFSError) -> WindowsDecryption {
        var written: UInt64 = 0
        func zeros(to end: UInt64) throws(EFSError) {
            while written < end {
                let n = Int(min(end - written, 1 << 16))
                try mapErrors(nil, "cannot write the output") {
                    try Sys.writeAll(output, [UInt8](repeating: 0, count: n))
                }
                written += UInt64(n)
            }
        }
        let r = try decrypt(key: key) { (offset, bytes) throws(EFSError) in
            try zeros(to: offset)
            try mapErrors(nil, "cannot write the output") { try Sys.writeAll(output, bytes) }
            written += UInt64(bytes.count)
        }
        try zeros(to: r.size)
        return r
    }
}
