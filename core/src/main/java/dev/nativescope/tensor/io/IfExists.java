package dev.nativescope.tensor.io;

import java.nio.file.FileAlreadyExistsException;

/**
 * What a method that creates a file ({@link MappedFile#create}, {@code Npy.create},
 * {@code SafeTensors.write}) does when the file already exists.
 *
 * <p>An enum: immutable and thread-safe.
 */
public enum IfExists {
    /** Throw {@link FileAlreadyExistsException} and leave the file alone (it is created with {@code O_CREAT|O_EXCL}). */
    FAIL,
    /**
     * Replace it atomically: the new file is built under a temporary name in the same directory
     * and renamed over the old one, so processes that mapped the old file keep reading the old
     * bytes instead of faulting on a truncated file.
     */
    REPLACE
}
