using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Diffusers;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Conversion;

/// <summary>
/// The one way to open a checkpoint for use (generation, bake, merge, convert): any readable file or diffusers
/// folder, seen through <see cref="CanonicalCheckpoint"/> in the single-file key space. <c>inspect</c> reads files as
/// they are (<see cref="ModelFileReader"/>); everything that consumes weights opens them here.
/// </summary>
public static class CheckpointFiles
{
    public static CanonicalCheckpoint Open(string path)
    {
        var file = ModelFileReader.Open(path);
        try
        {
            return CanonicalCheckpoint.Wrap(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A file, or a folder that is a diffusers model: what <see cref="Open"/> can be asked to open.</summary>
    public static bool Exists(string path) => File.Exists(path) || (Directory.Exists(path) && DiffusersFolder.IsDiffusersFolder(path));

    /// <summary>
    /// A1111's hashes of a checkpoint file; for a diffusers folder (which A1111 never hashes) the same hashes of its
    /// weight files read one after the other, in the folder reader's order (components as model_index lists them,
    /// shards in index order), so a folder has one stable identity too.
    /// </summary>
    public static ModelHashes Hash(string path)
    {
        if (!Directory.Exists(path)) return ModelHashes.Compute(path);
        List<string> files;
        using (var folder = DiffusersFolder.Open(path))
            files = folder.Tensors.Select(t => t.StorageKey!).Distinct(StringComparer.Ordinal).Select(f => System.IO.Path.Combine(path, f)).ToList();
        using var stream = new ConcatenatedFiles(files);
        return ModelHashes.Compute(stream);
    }

    /// <summary>Files read in sequence as one forward-only stream.</summary>
    private sealed class ConcatenatedFiles(IReadOnlyList<string> files) : Stream
    {
        private int _next;
        private FileStream? _current;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            while (true)
            {
                if (_current == null)
                {
                    if (_next == files.Count) return 0;
                    _current = new FileStream(files[_next++], FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
                }
                int read = _current.Read(buffer);
                if (read > 0) return read;
                _current.Dispose();
                _current = null;
            }
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _current?.Dispose();
            base.Dispose(disposing);
        }
    }
}
