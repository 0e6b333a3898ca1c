//! EXT-X-KEY METHOD=AES-128: the whole segment is AES-128-CBC with PKCS#7 padding.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};

use super::SegmentBuf;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptError {
    /// The key file is not 16 bytes.
    BadKeyLength(usize),
    /// Ciphertext not a multiple of 16 or padding wrong: wrong key/IV or a damaged segment.
    BadPadding,
}

impl std::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecryptError::BadKeyLength(n) => write!(f, "AES-128 key is {n} bytes, expected 16"),
            DecryptError::BadPadding => {
                write!(
                    f,
                    "AES-128 decryption failed (bad padding: wrong key/IV or damaged data)"
                )
            }
        }
    }
}

impl std::error::Error for DecryptError {}

pub fn aes128_cbc_decrypt(
    key: &[u8],
    iv: &[u8; 16],
    data: &[u8],
) -> Result<SegmentBuf, DecryptError> {
    let key: &[u8; 16] = key
        .try_into()
        .map_err(|_| DecryptError::BadKeyLength(key.len()))?;
    let mut buf = SegmentBuf::from(data);
    let len = Aes128CbcDec::new(key.into(), iv.into())
        .decrypt_padded_mut::<Pkcs7>(buf.as_mut_slice())
        .map_err(|_| DecryptError::BadPadding)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockEncryptMut;

    type Enc = cbc::Encryptor<aes::Aes128>;

    #[test]
    fn round_trip_and_errors() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let plain = b"0123456789abcdef-and-some-more".to_vec();
        let mut buf = plain.clone();
        buf.resize(plain.len() + 16, 0);
        let cipher = Enc::new(&key.into(), &iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .unwrap()
            .to_vec();
        assert_eq!(
            aes128_cbc_decrypt(&key, &iv, &cipher).unwrap().as_slice(),
            plain
        );
        assert_eq!(
            aes128_cbc_decrypt(&key[..8], &iv, &cipher),
            Err(DecryptError::BadKeyLength(8))
        );
        assert_eq!(
            aes128_cbc_decrypt(&key, &iv, &cipher[..17]),
            Err(DecryptError::BadPadding)
        );
        let wrong = [1u8; 16];
        assert!(aes128_cbc_decrypt(&wrong, &iv, &cipher)
            .map(|p| p.as_slice() != plain)
            .unwrap_or(true));
    }
}
