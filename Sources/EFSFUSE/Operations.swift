// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CFUSE
import EFS
import EFSSystem
import SystemPackage

// The C callbacks of the low-level API. They capture nothing (they are C function pointers): each finds the file
// system through the request's user data, runs the operation, and replies with the mapped errno if it throws.
//
// They are built in this ordinary file on purpose: closures in a `main.swift` are main-actor code, and Swift 6
// traps when libfuse calls them from its worker threads.

/// The file system of a request (the user data given to `fuse_session_new`).
@inline(__always)
private func fileSystem(_ req: fuse_req_t?) -> EFSFileSystem {
    Unmanaged<EFSFileSystem>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

/// Runs `body` with thread cancellation disabled (see `cfuse_cancel_disable` in the shim).
@inline(__always)
private func uncancellable(_ body: () -> Void) {
    let old = cfuse_cancel_disable()
    defer { cfuse_cancel_restore(old) }
    body()
}

/// Runs an operation and replies with an errno if it fails.
@inline(__always)
private func serve(_ req: fuse_req_t?, _ body: (EFSFileSystem) throws -> Void) {
    let old = cfuse_cancel_disable()
    defer { cfuse_cancel_restore(old) }
    let fs = fileSystem(req)
    do { try body(fs) } catch {
        if FUSEErrno.shouldLog(error) { fs.report(error) }
        fuse_reply_err(req, FUSEErrno.code(for: error))
    }
}

@inline(__always)
private func string(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

/// The open file of a `fuse_file_info` (set by open/create).
@inline(__always)
private func openFile(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> OpenFile? {
    guard let fi, let p = UnsafeMutableRawPointer(bitPattern: UInt(fi.pointee.fh)) else { return nil }
    return Unmanaged<OpenFile>.fromOpaque(p).takeUnretainedValue()
}

@inline(__always)
private func requireOpenFile(_ fi: UnsafeMutablePointer<fuse_file_info>?) throws(Errno) -> OpenFile {
    guard let f = openFile(fi) else { throw Errno.badFileDescriptor }
    return f
}

func makeLowLevelOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = { _, conn in
        guard let conn else { return }
        // Writeback caching would let the kernel reorder and merge writes beyond what fsync promises; keep it off.
        conn.pointee.want &= ~UInt32(FUSE_CAP_WRITEBACK_CACHE)
        // Requests must arrive through read(2), where the shim sees which ones ask for set-ID bits to be killed.
        conn.pointee.want &= ~UInt32(FUSE_CAP_SPLICE_READ)
    }
    ops.destroy = { userdata in
        guard let userdata else { return }
        Unmanaged<EFSFileSystem>.fromOpaque(userdata).takeUnretainedValue().encrypted.closeAll()
    }
    ops.lookup = { req, parent, name in serve(req) { try $0.lookup(req, parent, string(name)) } }
    ops.forget = { req, ino, n in
        uncancellable { fileSystem(req).nodes.forget(ino, n) }
        fuse_reply_none(req)
    }
    ops.forget_multi = { req, count, forgets in
        uncancellable {
            let fs = fileSystem(req)
            if let forgets {
                for i in 0..<count { fs.nodes.forget(forgets[i].ino, forgets[i].nlookup) }
            }
        }
        fuse_reply_none(req)
    }
    ops.getattr = { req, ino, _ in serve(req) { try $0.getattr(req, ino) } }
    ops.setattr = { req, ino, attr, toSet, fi in
        serve(req) { fs in
            guard let attr else { throw Errno.invalidArgument }
            try fs.killSetIDBitsIfAsked(ino)
            try fs.setattr(req, ino, attr.pointee, toSet, openFile(fi))
        }
    }
    ops.readlink = { req, ino in serve(req) { try $0.readlink(req, ino) } }
    ops.mknod = { req, parent, name, mode, dev in serve(req) { try $0.mknod(req, parent, string(name), mode, UInt64(dev)) } }
    ops.mkdir = { req, parent, name, mode in serve(req) { try $0.mkdir(req, parent, string(name), mode) } }
    ops.unlink = { req, parent, name in serve(req) { try $0.unlink(req, parent, string(name)) } }
    ops.rmdir = { req, parent, name in serve(req) { try $0.rmdir(req, parent, string(name)) } }
    ops.symlink = { req, target, parent, name in serve(req) { try $0.symlink(req, string(target), parent, string(name)) } }
    ops.rename = { req, parent, name, newParent, newName, flags in
        serve(req) { try $0.rename(req, parent, string(name), newParent, string(newName), flags) }
    }
    ops.link = { req, ino, newParent, newName in serve(req) { try $0.link(req, ino, newParent, string(newName)) } }
    ops.open = { req, ino, fi in
        serve(req) { fs in
            guard let fi else { throw Errno.invalidArgument }
            try fs.killSetIDBitsIfAsked(ino)
            try fs.open(req, ino, fi)
        }
    }
    ops.create = { req, parent, name, mode, fi in
        serve(req) { fs in
            guard let fi else { throw Errno.invalidArgument }
            try fs.create(req, parent, string(name), mode, fi)
        }
    }
    ops.read = { req, _, size, offset, fi in
        serve(req) { try $0.read(req, try requireOpenFile(fi), size, Int64(offset)) }
    }
    ops.write = { req, ino, buf, size, offset, fi in
        serve(req) { fs in
            try fs.killSetIDBitsIfAsked(ino)
            try fs.write(req, try requireOpenFile(fi), UnsafeRawBufferPointer(start: buf, count: size), Int64(offset))
        }
    }
    ops.flush = { req, _, fi in serve(req) { try $0.flush(req, try requireOpenFile(fi)) } }
    ops.fsync = { req, _, datasync, fi in
        serve(req) { try $0.fsync(req, try requireOpenFile(fi), dataOnly: datasync != 0) }
    }
    ops.fallocate = { req, _, mode, offset, length, fi in
        serve(req) { try $0.fallocate(req, try requireOpenFile(fi), mode: mode, offset: Int64(offset), length: Int64(length)) }
    }
    ops.release = { req, _, fi in
        uncancellable { fileSystem(req).release(req, fi?.pointee.fh ?? 0) }
    }
    ops.opendir = { req, ino, fi in
        serve(req) { fs in
            guard let fi else { throw Errno.invalidArgument }
            try fs.opendir(req, ino, fi)
        }
    }
    ops.readdir = { req, _, size, offset, fi in
        serve(req) { fs in
            guard let fi, let p = UnsafeMutableRawPointer(bitPattern: UInt(fi.pointee.fh)) else { throw Errno.badFileDescriptor }
            try fs.readdir(req, Unmanaged<OpenDirectory>.fromOpaque(p).takeUnretainedValue(), size, Int64(offset))
        }
    }
    ops.releasedir = { req, _, fi in
        uncancellable { fileSystem(req).releasedir(fi?.pointee.fh ?? 0) }
        fuse_reply_err(req, 0)
    }
    ops.fsyncdir = { req, ino, _, _ in
        serve(req) { fs in
            let node = try fs.nodes.node(ino)
            let fd = try Sys.open(node.procPath, [.readOnly, .directory])
            defer { Sys.close(fd) }
            try Sys.fsync(fd)
            fuse_reply_err(req, 0)
        }
    }
    ops.statfs = { req, _ in serve(req) { try $0.statfs(req) } }
    ops.setxattr = { req, ino, name, value, size, flags in
        serve(req) { fs in
            let bytes = size == 0 ? [] : [UInt8](UnsafeRawBufferPointer(start: value, count: size))
            try fs.setxattr(req, ino, string(name), bytes, flags)
        }
    }
    ops.getxattr = { req, ino, name, size in serve(req) { try $0.getxattr(req, ino, string(name), size) } }
    ops.listxattr = { req, ino, size in serve(req) { try $0.listxattr(req, ino, size) } }
    ops.removexattr = { req, ino, name in serve(req) { try $0.removexattr(req, ino, string(name)) } }
    return ops
}
