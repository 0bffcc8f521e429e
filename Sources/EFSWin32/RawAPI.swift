// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CEFSWin32
import EFS
import Synchronization
import SystemPackage

/// The raw contexts handed to C callers, so that a stale or foreign `PVOID` is refused instead of followed.
///
/// A handle is an `Unmanaged<RawContext>` retained pointer. While it is in `live` it owns that one retain;
/// `CloseEncryptedFileRaw` takes it out and releases it. Looking a handle up under the lock therefore always finds
/// a living object, even if another thread closes it a moment later.
enum RawHandles {
    private static let live = Mutex<Set<UInt>>([])

    /// A new handle for `context`.
    static func register(_ context: RawContext) -> PVOID {
        let handle = Unmanaged.passRetained(context).toOpaque()
        live.withLock { _ = $0.insert(UInt(bitPattern: handle)) }
        return handle
    }

    /// The context of a live handle, or nil.
    static func lookup(_ handle: PVOID?) -> RawContext? {
        guard let handle else { return nil }
        return live.withLock { set in
            guard set.contains(UInt(bitPattern: handle)) else { return nil }
            // Unsafe: a handle in `live` holds a retain on its context (see the type's invariant), so the object is
            // alive; takeUnretainedValue gives us our own strong reference to it.
            return Unmanaged<RawContext>.fromOpaque(handle).takeUnretainedValue()
        }
    }

    /// Takes a handle out of the live set and returns its context, or nil if it was not live.
    static func remove(_ handle: PVOID?) -> RawContext? {
        guard let handle, live.withLock({ $0.remove(UInt(bitPattern: handle)) != nil }) else { return nil }
        // Unsafe: the handle was live, so it owned one retain, which this consumes; it is gone from `live`, so no
        // one else can consume it again.
        return Unmanaged<RawContext>.fromOpaque(handle).takeRetainedValue()
    }
}

// MARK: - OpenEncryptedFileRaw

/// `OpenEncryptedFileRawA`: opens a file or directory (UTF-8 path) for raw export (`ulFlags` 0) or import
/// (`CREATE_FOR_IMPORT`), and stores an opaque context in `*pvContext`.
@_cdecl("OpenEncryptedFileRawA")
public func openEncryptedFileRawA(_ lpFileName: LPCSTR?, _ ulFlags: ULONG, _ pvContext: UnsafeMutablePointer<PVOID?>?) -> DWORD {
    openEncryptedFileRaw(ulFlags, pvContext) { () throws(Win32Error) in try Strings.path(lpFileName) }
}

/// `OpenEncryptedFileRawW`: ``openEncryptedFileRawA(_:_:_:)`` with a UTF-16 path.
@_cdecl("OpenEncryptedFileRawW")
public func openEncryptedFileRawW(_ lpFileName: LPCWSTR?, _ ulFlags: ULONG, _ pvContext: UnsafeMutablePointer<PVOID?>?) -> DWORD {
    openEncryptedFileRaw(ulFlags, pvContext) { () throws(Win32Error) in try Strings.path(lpFileName) }
}

private func openEncryptedFileRaw(
    _ flags: ULONG, _ out: UnsafeMutablePointer<PVOID?>?, _ path: () throws(Win32Error) -> FilePath
) -> DWORD {
    guard let out else { return DWORD(ERROR_INVALID_PARAMETER) }
    // Unsafe: `out` is the caller's PVOID slot (the _Outptr_ contract). It is cleared first, so it never holds a
    // stale value after a failure.
    out.pointee = nil
    return returningCode {
        let path = try path()
        let context = try on(path) { try RawContext.open(path, flags: RawFlags(rawValue: flags)) }
        out.pointee = RawHandles.register(context)
    }
}

// MARK: - ReadEncryptedFileRaw

/// `ReadEncryptedFileRaw`: streams the whole object of an export context to `pfExportCallback`, block by block.
///
/// A callback that returns anything but `ERROR_SUCCESS` stops the export, and that value is returned.
@_cdecl("ReadEncryptedFileRaw")
public func readEncryptedFileRaw(
    _ pfExportCallback: PFE_EXPORT_FUNC?, _ pvCallbackContext: PVOID?, _ pvContext: PVOID?
) -> DWORD {
    guard let callback = pfExportCallback, let context = RawHandles.lookup(pvContext) else {
        return DWORD(ERROR_INVALID_PARAMETER)
    }
    return returningCode {
        try context.read { chunk in
            guard !chunk.isEmpty else { return }
            guard let length = ULONG(exactly: chunk.count) else { throw Win32Error.invalidParameter }
            let status = chunk.withUnsafeBufferPointer { bytes in
                // Unsafe: `bytes` is valid for the whole call and holds `length` bytes. pbData is
                // _In_reads_bytes_(ulLength): the callback only reads it, so the cast to a mutable pointer exists
                // only to match the C prototype.
                callback(UnsafeMutablePointer(mutating: bytes.baseAddress), pvCallbackContext, length)
            }
            if status != DWORD(ERROR_SUCCESS) { throw RawCallbackError(code: status) }
        }
    }
}

// MARK: - WriteEncryptedFileRaw

/// `WriteEncryptedFileRaw`: pulls a raw stream from `pfImportCallback` into an import context until the callback
/// returns `ERROR_SUCCESS` with `*ulLength = 0`, checks it, and puts the object in place.
///
/// The callback gets a buffer of `RawContext.importChunkSize` bytes with `*ulLength` set to that capacity. A
/// callback that returns anything but `ERROR_SUCCESS` stops the import (nothing is changed), and that value is
/// returned. A malformed stream gives `ERROR_NOT_EXPORT_FORMAT`.
@_cdecl("WriteEncryptedFileRaw")
public func writeEncryptedFileRaw(
    _ pfImportCallback: PFE_IMPORT_FUNC?, _ pvCallbackContext: PVOID?, _ pvContext: PVOID?
) -> DWORD {
    guard let callback = pfImportCallback, let context = RawHandles.lookup(pvContext) else {
        return DWORD(ERROR_INVALID_PARAMETER)
    }
    let capacity = RawContext.importChunkSize
    let buffer = UnsafeMutablePointer<BYTE>.allocate(capacity: capacity)
    // Unsafe: `buffer` is ours, `capacity` bytes, zeroed so that a callback that reports bytes it did not write
    // exposes nothing; it is freed when this call returns, after the last callback.
    buffer.initialize(repeating: 0, count: capacity)
    defer { buffer.deallocate() }
    return returningCode {
        try context.write { maximum in
            let offered = min(maximum, capacity)
            var length = ULONG(offered)
            // Unsafe: the callback may write up to `length` (= offered ≤ capacity) bytes into `buffer`, per the
            // PFE_IMPORT_FUNC contract, and sets `length` to the count.
            let status = callback(buffer, pvCallbackContext, &length)
            if status != DWORD(ERROR_SUCCESS) { throw RawCallbackError(code: status) }
            // A callback that claims more bytes than it was offered fails the import with ERROR_INVALID_PARAMETER.
            // (Thrown as a callback code, since the raw API reports any other error from here as ERROR_CANCELLED.)
            guard Int(length) <= offered else { throw RawCallbackError(code: DWORD(ERROR_INVALID_PARAMETER)) }
            // Unsafe: `length` ≤ offered ≤ capacity, checked above, so the copy stays inside `buffer`.
            return Array(UnsafeBufferPointer(start: buffer, count: Int(length)))
        }
    }
}

// MARK: - CloseEncryptedFileRaw

/// `CloseEncryptedFileRaw`: frees the context and releases the file. NULL, or a context already closed, is a no-op.
@_cdecl("CloseEncryptedFileRaw")
public func closeEncryptedFileRaw(_ pvContext: PVOID?) {
    RawHandles.remove(pvContext)?.close()
}
