/** Experiments from the paper, as library functions (the CLI and examples call these). */
export { runFisherSimilarity, kfacMethod, shampooMethod, type SimilarityOptions, type SimilarityResult, type SimilarityMethod, type LayerContext } from './fisher-similarity.js';
export { lineChart, type Panel, type Series } from './svg.js';
