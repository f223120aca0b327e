import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import tailwindcss from '@tailwindcss/vite'

// The built files (dist/) are committed and embedded into the opaas binary (rust-embed) and
// served at `/`. Keep the build deterministic (check-dist.sh compares a rebuild with dist/):
// relative asset paths, content-hashed names, no source maps, nothing fetched from the network.
export default defineConfig({
  base: './',
  plugins: [vue(), tailwindcss()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    assetsDir: 'assets',
    reportCompressedSize: false,
    // one small app: a single JS and a single CSS file
    rollupOptions: { output: { manualChunks: undefined } },
  },
  server: {
    host: '127.0.0.1',
    // `npm run mock` serves the fake API on this port; `npm run dev` proxies to it
    proxy: { '/api': { target: process.env.OPAAS_API || 'http://127.0.0.1:5180', changeOrigin: false } },
  },
  test: {
    include: ['tests/unit/**/*.test.js'],
  },
})
