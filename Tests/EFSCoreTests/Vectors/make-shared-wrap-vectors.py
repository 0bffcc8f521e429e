# SPDX-License-Identifier: Apache-2.0
# Known answers for wrap algorithms 4 and 5 (file-format.md section 4.3), from an implementation independent of
# swift-efs and swift-crypto: pyhpke 0.6.5 and pyca/cryptography (pip install pyhpke). Output pasted into
# HPKESealTests.sharedKnownAnswer. P-256 uses the CFRG test vector's recipient and ephemeral keys; P-384 uses
# the scalars 01..30 (recipient) and 02..31 (ephemeral).
from pyhpke import CipherSuite, KEMId, KDFId, AEADId, KEMKey
from pyhpke.kem_key import KEMKeyPair
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.asymmetric import ec
import sys
def run(kem, kdf, curve, skR, skE):
    suite = CipherSuite.new(kem, kdf, AEADId.AES256_GCM)
    key = lambda raw: ec.derive_private_key(int.from_bytes(raw,'big'), curve)
    pkR = KEMKey.from_pyca_cryptography_key(key(skR).public_key())
    e = key(skE)
    eks = KEMKeyPair(KEMKey.from_pyca_cryptography_key(e), KEMKey.from_pyca_cryptography_key(e.public_key()))
    enc, ctx = suite.create_sender_context(pkR, b"swift-efs v1 fek wrap shared", eks=eks)
    fid = bytes(range(0x10,0x20)); wid = bytes(range(0xa0,0xb0)); fek = bytes(range(32))
    k = ctx.export(fid+wid, 32)
    ct = AESGCM(k).encrypt(b"\0"*12, fek, fid)
    print("wrapped", (enc+wid+ct).hex())
run(KEMId.DHKEM_P256_HKDF_SHA256, KDFId.HKDF_SHA256, ec.SECP256R1(),
    bytes.fromhex("317f915db7bc629c48fe765587897e01e282d3e8445f79f27f65d031a88082b2"),
    bytes.fromhex("90345e3a1d116c1dd39ae76d95ab858c142223a63e44f8f85318cfa91a84858e"))
run(KEMId.DHKEM_P384_HKDF_SHA384, KDFId.HKDF_SHA384, ec.SECP384R1(),
    bytes(range(1,49)), bytes(range(2,50)))
